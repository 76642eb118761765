"""`flask` commands through Click's runner, each on a fresh, empty database."""

import zipfile

import pandas as pd

from conftest import BUNDLED_DATA, GOLDEN_DIR, PROJECT_DIR


def test_ingest_prints_counts_and_rejections(runner):
    result = runner.invoke(args=["ingest", str(GOLDEN_DIR / "m_formats_aliases_rejects")])
    assert result.exit_code == 0, result.output
    assert "Status.csv" in result.output and "rejected Status.csv:5:" in result.output
    line = next(x for x in result.output.splitlines() if x.startswith("Status.csv"))
    assert line.split()[1:] == ["9", "5", "0", "4"]


def test_ingest_of_unusable_input_exits_non_zero_with_one_line(runner, tmp_path):
    result = runner.invoke(args=["ingest", str(tmp_path / "missing.zip")])
    assert result.exit_code != 0
    assert "no such file or folder" in result.output and "Traceback" not in result.output


def test_report_writes_the_same_csv_as_the_api(runner, tmp_path):
    runner.invoke(args=["ingest", str(GOLDEN_DIR / "c_overnight")])
    out = tmp_path / "report.csv"
    result = runner.invoke(args=["report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (GOLDEN_DIR / "c_overnight" / "expected.csv").read_text()


def test_report_on_an_empty_database_has_only_the_header(runner):
    result = runner.invoke(args=["report", "--out", "-"])
    assert result.exit_code == 0
    assert result.output.startswith("store_id,uptime_last_hour,uptime_last_day,")
    assert len(result.output.strip().splitlines()) == 1


def test_sample_output_is_the_report_of_the_bundled_data(runner, tmp_path):
    runner.invoke(args=["ingest", str(BUNDLED_DATA)])
    out = tmp_path / "report.csv"
    runner.invoke(args=["report", "--out", str(out)])
    assert out.read_text() == (PROJECT_DIR / "sample_output.csv").read_text()


def test_generate_data_is_reproducible_and_has_every_shape(runner, tmp_path):
    for name in ("a.zip", "b.zip"):
        result = runner.invoke(args=["generate-data", str(tmp_path / name), "--stores", "400",
                                     "--days", "3", "--seed", "7"])
        assert result.exit_code == 0, result.output
    read = {}
    for name in ("a.zip", "b.zip"):
        with zipfile.ZipFile(tmp_path / name) as z:
            read[name] = {n: z.read(n) for n in sorted(z.namelist())}
    assert read["a.zip"] == read["b.zip"]

    folder = tmp_path / "plain"
    runner.invoke(args=["generate-data", str(folder), "--stores", "400", "--days", "3"])
    status = pd.read_csv(folder / "store_status.csv", dtype=str)
    hours = pd.read_csv(folder / "business_hours.csv", dtype=str)
    zones = pd.read_csv(folder / "store_timezone.csv", dtype=str, keep_default_na=False)
    polled = set(status["store_id"])
    # 3 days of hourly slots is 72 polls per store, each missed with probability 0.04:
    # about 69 per store; the lower bound leaves room for chance.
    per_store = status.groupby("store_id").size()
    assert 55 <= per_store.median() <= 72
    assert set(status["status"]) == {"active", "inactive"}
    assert len(polled - set(hours["store_id"])) > 0, "some stores have no hours (24x7)"
    assert len(polled - set(zones["store_id"])) > 0, "some stores have no timezone row"
    assert (hours["end_time_local"] < hours["start_time_local"]).any(), "overnight hours"
    assert (hours.groupby(["store_id", "dayOfWeek"]).size() > 1).any(), "split shifts"
    assert (hours["end_time_local"] == "23:59:59").any()
    assert zones["timezone_str"].str.startswith(("Europe/", "Asia/", "Australia/")).any()
