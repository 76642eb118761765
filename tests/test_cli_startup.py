"""What `python run.py` says at start, and where the demo data goes (issue 18, points 8
and 9): the database it uses, the dashboard's and /docs' addresses, whether the data is the
bundled (generated) demo; the rest at debug level; the demo only into the default SQLite
database unless STORE_DATA asks for it."""

import os
import re
import subprocess
import sys

import requests
from conftest import BUNDLED_DATA, PROJECT_DIR


def store_data_default(**env):
    """`Config.STORE_DATA` in a fresh process with these variables (and no others of ours)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",
                                                                     "STORE_DATA")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "from app.config import Config; print(Config.STORE_DATA)"],
        cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=60,
        check=True).stdout.strip()


def test_the_demo_goes_only_into_the_default_database(tmp_path):
    assert store_data_default() == str(BUNDLED_DATA)
    url = f"sqlite:///{tmp_path / 'mine.sqlite3'}"
    assert store_data_default(DATABASE_URL=url) == ""
    assert store_data_default(DATABASE_URL=url, STORE_DATA=str(BUNDLED_DATA)) == \
        str(BUNDLED_DATA)


def info_lines(log):
    return [line.split(": ", 1)[1] for line in log.splitlines() if " INFO " in line]


def test_run_py_says_what_a_new_user_needs(server_factory, tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    server = server_factory(DATABASE_URL=url, STORE_DATA=str(BUNDLED_DATA),
                            SERVER_PROCESSES="1", REUSE_REPORTS="0").start(timeout=120)
    for _ in range(2):  # two reports of the same data: its warning is logged once
        report_id = requests.post(f"{server.url}/trigger_report", timeout=10).json()[
            "report_id"]
        server.wait_for_report(report_id)
    server.stop()
    log = server.log()
    said = info_lines(log)
    assert f"database: {url}" in said
    assert ("data: the bundled demo (store-monitoring-data.zip), a generated data set, not "
            "real stores; STORE_DATA= starts without it") in said
    assert (f"dashboard: {server.url}/  API documentation: {server.url}/docs  "
            "(1 serving process)") in said
    assert not any("columnar copy" in line for line in said)
    assert len(re.findall(r"WARNING app\.reports\.pipeline: store \d+: unknown timezone",
                          log)) == 1


def test_with_a_database_url_and_no_store_data_nothing_is_loaded(server_factory, tmp_path):
    url = f"sqlite:///{tmp_path / 'own.sqlite3'}"
    server = server_factory(DATABASE_URL=url, SERVER_PROCESSES="1")
    server.env.pop("STORE_DATA", None)
    server.start(timeout=120)
    data = requests.get(f"{server.url}/api/v1/data", timeout=10).json()
    server.stop()
    assert data["polls"] == 0 and data["ingests"] == 0
    said = info_lines(server.log())
    assert ("DATABASE_URL is set and STORE_DATA is not: the bundled demo data is not loaded "
            "into that database (STORE_DATA=data/store-monitoring-data.zip loads it)") in said
    assert not any(line.startswith("data: the bundled demo") for line in said)
