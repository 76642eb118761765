"""SQLite while an ingest holds the data file's write lock (for a minute and more with
millions of polls): triggers are accepted at once and reports complete, because the report
queue is a file of its own (the default on SQLite) and reports read the data through WAL."""

import sqlite3
import time

from conftest import close_app, make_app

from app.ingest.load import ingest
from bench.generate import generate_dataset, write_dataset


def test_triggers_and_reports_go_on_while_the_data_file_is_locked(tmp_path):
    path = tmp_path / "store-monitor.sqlite3"
    # No QUEUE_DATABASE_URL: the queue gets its own file beside the data by default.
    app = make_app(f"sqlite:///{path}", REPORT_WORKERS=2, SQLITE_BUSY_TIMEOUT=2,
                   REUSE_REPORTS=False)
    assert (tmp_path / "store-monitor-queue.sqlite3").exists()
    app.extensions["report_runner"].wake()
    client = app.test_client()
    try:
        write_dataset(generate_dataset(stores=300, days=8, seed=4), tmp_path / "data")
        with app.app_context():
            ingest(tmp_path / "data")
        baseline = client.post("/trigger_report").get_json()["report_id"]
        expected = wait_complete(client, baseline, time.monotonic() + 60).get_data(as_text=True)

        # What an ingest does for its whole transaction: hold the data file's write lock.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        locked = time.monotonic()
        try:
            ids = []
            for _ in range(3):
                began = time.monotonic()
                response = client.post("/trigger_report")
                assert response.status_code == 202
                assert time.monotonic() - began < 1  # not the 2 s busy timeout, nor an error
                ids.append(response.get_json()["report_id"])
            # Reports complete while the lock is still held, with the data as it was.
            for report_id in ids:
                done = wait_complete(client, report_id, locked + 60)
                assert done.get_data(as_text=True) == expected
            assert holder.in_transaction
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        close_app(app)


def wait_complete(client, report_id, deadline):
    while time.monotonic() < deadline:
        response = client.get(f"/get_report?report_id={report_id}")
        assert response.status_code == 200
        if response.headers["X-Report-Status"] != "Running":
            assert response.headers["X-Report-Status"] == "Complete", response.get_json()
            return response
        time.sleep(0.05)
    raise AssertionError(f"report {report_id} still Running")
