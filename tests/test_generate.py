"""The data generator of bench/ (`python -m bench.generate`), a development tool."""

import subprocess
import sys
import zipfile

import pandas as pd
from click.testing import CliRunner
from conftest import PROJECT_DIR

from bench.generate import main


def generate(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result


def test_generated_data_is_reproducible_and_has_every_shape(tmp_path):
    for name in ("a.zip", "b.zip"):
        generate(tmp_path / name, "--stores", 400, "--days", 3, "--seed", 7)
    read = {}
    for name in ("a.zip", "b.zip"):
        with zipfile.ZipFile(tmp_path / name) as z:
            read[name] = {n: z.read(n) for n in sorted(z.namelist())}
    assert read["a.zip"] == read["b.zip"]

    folder = tmp_path / "plain"
    generate(folder, "--stores", 400, "--days", 3)
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


def test_runs_as_a_module_and_says_what_it_wrote(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.generate", str(tmp_path / "d.zip"),
                           "--stores", "20", "--days", "2"], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "of 20 stores written to" in done.stdout
    with zipfile.ZipFile(tmp_path / "d.zip") as z:
        assert sorted(z.namelist()) == ["business_hours.csv", "store_status.csv",
                                        "store_timezone.csv"]
