"""`flask` commands through Click's runner, each on a fresh, empty database."""


import pytest
import requests
from conftest import BUNDLED_DATA, GOLDEN_DIR, PROJECT_DIR


def flask(runner, *args, exit_code=0):
    """Run `flask ARGS` and check how it exited (0 unless told otherwise)."""
    result = runner.invoke(args=[str(arg) for arg in args])
    assert result.exit_code == exit_code, result.output
    return result


def test_ingest_prints_counts_and_rejections(runner):
    result = flask(runner, "ingest", GOLDEN_DIR / "m_formats_aliases_rejects")
    assert "Status.csv" in result.output and "rejected Status.csv:5:" in result.output
    line = next(x for x in result.output.splitlines() if x.startswith("Status.csv"))
    assert line.split()[1:] == ["9", "5", "0", "4"]


def test_ingest_of_unusable_input_exits_non_zero_with_one_line(runner, tmp_path):
    result = flask(runner, "ingest", tmp_path / "missing.zip", exit_code=1)
    assert "no such file or folder" in result.output and "Traceback" not in result.output


@pytest.mark.e2e
def test_report_writes_the_same_csv_as_the_api(runner, server_factory, database_url,
                                               tmp_path):
    case = GOLDEN_DIR / "c_overnight"
    flask(runner, "ingest", case)
    out = tmp_path / "report.csv"
    flask(runner, "report", "--out", out)
    # The API of a server on the same database, asked over HTTP.
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="").start()
    triggered = requests.post(f"{server.url}/trigger_report", timeout=10)
    assert triggered.status_code == 202
    served = server.wait_for_report(triggered.json()["report_id"])
    assert served.headers["X-Report-Status"] == "Complete"
    assert out.read_text() == served.text == (case / "expected.csv").read_text()


def test_report_on_an_empty_database_has_only_the_header(runner):
    result = flask(runner, "report", "--out", "-")
    assert result.stdout.startswith("store_id,uptime_last_hour,uptime_last_day,")
    assert len(result.stdout.strip().splitlines()) == 1
    assert result.stderr.startswith("warning: no polls are loaded")


def test_sample_output_is_the_report_of_the_bundled_data(runner, tmp_path):
    flask(runner, "ingest", BUNDLED_DATA)
    out = tmp_path / "report.csv"
    flask(runner, "report", "--out", out)
    assert out.read_text() == (PROJECT_DIR / "sample_output.csv").read_text()
