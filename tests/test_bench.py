"""`python -m bench.report` runs end to end: each step in its own process, two real servers."""

import re
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR

pytestmark = pytest.mark.e2e


def test_the_report_bench_prints_every_step(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", "--stores", "20", "--days", "1", "--repeat", "1",
         "--cache-dir", str(tmp_path / "cache")],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = dict(re.findall(r"^(\S.*?)\s+(\d+\.\d\d)\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+$",
                              done.stdout, re.MULTILINE))
    assert list(figures) == ["ingest", "snapshot", "engine", "trigger -> CSV",
                             "2nd trigger (reused)"], done.stdout
    assert re.search(r"^data: 20 stores x 1 days = [\d,]+ polls", done.stdout, re.MULTILINE)
    assert "(1 run(s) on sqlite;" in done.stdout


def test_dask_workers_need_postgresql(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", "--dask-workers", "2",
         "--cache-dir", str(tmp_path / "cache")],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2  # click's usage error
    assert "--dask-workers needs a PostgreSQL --database-url" in done.stderr
