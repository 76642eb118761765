"""Several processes, one database: gunicorn with 4 workers, as operators run it."""

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from conftest import BUNDLED_DATA, PROJECT_DIR
from servers import gunicorn

from app.reports.liveness import INTERRUPTED
from app.storage.database import queue_url

pytestmark = pytest.mark.e2e

LEASE = {"STALE_REPORT_SECONDS": "4", "HEARTBEAT_SECONDS": "0.5", "LOG_TO_STDOUT": "1"}


def test_four_workers_share_reports_and_run_each_once(server_factory, database_url):
    server = server_factory(gunicorn(4), DATABASE_URL=database_url,
                            STORE_DATA=str(BUNDLED_DATA), **LEASE).start(timeout=120)
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            # Four workers started together; the bundled data was loaded once.
            assert conn.exec_driver_sql("SELECT count(*) FROM ingest").scalar() == 1

        with ThreadPoolExecutor(20) as pool:
            triggered = list(pool.map(
                lambda _: requests.post(f"{server.url}/trigger_report",
                                        headers={"Connection": "close"}, timeout=10),
                range(20)))
            assert all(r.status_code == 202 for r in triggered)
            ids = [r.json()["report_id"] for r in triggered]
            done = list(pool.map(
                lambda i: server.wait_for_report(i, timeout=120, fresh_connections=True), ids))

        expected = (PROJECT_DIR / "sample_output.csv").read_text()
        assert [r.headers["X-Report-Status"] for r in done] == ["Complete"] * 20
        assert all(r.text == expected for r in done)
        # Every report was computed exactly once, whichever worker took it.
        started = re.findall(r"report (\S+) started by", server.log())
        assert sorted(started) == sorted(ids)
    finally:
        engine.dispose()


def test_report_of_a_killed_worker_ends_in_error(server_factory, database_url,
                                                 big_store_data):
    # About 2.5 million polls: reading them alone takes the claimer seconds, so the kill,
    # sent as soon as the report is claimed, lands while it is computed.
    server = server_factory(gunicorn(4), DATABASE_URL=database_url, STORE_DATA=str(big_store_data),
                            **LEASE).start(timeout=300)
    engine = sa.create_engine(queue_url(database_url))  # where the report table is
    try:
        report_id = requests.post(f"{server.url}/trigger_report", timeout=10).json()["report_id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                worker, finished = conn.execute(
                    sa.text("SELECT worker, finished_at FROM report WHERE id = :id"),
                    {"id": report_id}).one()
            if worker:
                break
            time.sleep(0.02)
        assert worker and finished is None, "the report was never claimed, or ended at once"
        os.kill(int(worker.split(":")[1]), signal.SIGKILL)

        # Nothing computes the report again: another process (a sibling's heartbeat, the
        # replacement worker's start-up, or a poll once the lease expired) fails it. A report
        # that ended Complete would mean the kill came too late and tested nothing.
        done = server.wait_for_report(report_id, fresh_connections=True)
        assert done.headers["X-Report-Status"] == "Error"
        assert done.json()["error"] == INTERRUPTED
    finally:
        engine.dispose()
