"""No report stays Running after a database blip: a report's end is recorded through short
outages, and a report whose end could not be recorded fails once its lease expires."""

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa
from conftest import close_app, make_app

from app.ingest.load import ingest
from app.reports import pipeline
from app.storage.database import queue_url
from app.storage.models import Report
from app.storage.outage import is_unavailable
from app.storage.retry import with_retries
from bench.generate import generate_dataset, write_dataset

STALE = 3  # seconds: STALE_REPORT_SECONDS in these tests
# Past the end of the last fault: the lease (STALE), a heartbeat round, and time for the
# reports still queued then to be computed (a few tenths of a second each, alone; far more
# on a machine busy with other test runs).
MARGIN = 15


def lease_test_app(url, **config):
    app = make_app(url, **{"REPORT_WORKERS": 2, "HEARTBEAT_SECONDS": 0.3,
                           "STALE_REPORT_SECONDS": STALE, "FINAL_WRITE_SECONDS": 1,
                           "DATABASE_CONNECT_TIMEOUT": 2, "REUSE_REPORTS": False, **config})
    app.extensions["report_runner"].wake()
    return app


def load_data(app, folder, stores):
    write_dataset(generate_dataset(stores=stores, days=8, seed=11), folder)
    with app.app_context():
        ingest(folder)


def states(url, ids):
    """Each report's status, read straight from the database (no proxy, no lease check)."""
    engine = sa.create_engine(queue_url(url))
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.select(Report.id, Report.status)
                                     .where(Report.id.in_(ids))).all())
    finally:
        engine.dispose()


def wait_until_ended(url, ids, deadline):
    while True:
        found = states(url, ids)
        if all(status in Report.FINISHED for status in found.values()) or \
                time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_every_report_ends_after_cut_and_lost_connections(db_proxy, database_url, tmp_path):
    proxy, url = db_proxy
    app = lease_test_app(url)
    try:
        load_data(app, tmp_path / "data", stores=1500)  # about 270,000 polls
        client = app.test_client()
        ids = [client.post("/trigger_report").get_json()["report_id"] for _ in range(8)]

        for _ in range(5):  # connections cut under running reports
            time.sleep(0.3)
            proxy.cut()
        proxy.stop()  # a half-second outage
        time.sleep(0.5)
        proxy.forward()
        time.sleep(0.3)
        proxy.stop()  # longer than FINAL_WRITE_SECONDS: some ends cannot be recorded
        time.sleep(3)
        proxy.forward()

        found = wait_until_ended(database_url, ids, time.monotonic() + STALE + MARGIN)
        assert set(found) == set(ids)
        assert all(status in Report.FINISHED for status in found.values()), found
    finally:
        close_app(app)


class Gate:
    """Reports compute only once the test opens the gate (after taking a lock), and the
    test learns when they have computed (and so try to record their end)."""

    def __init__(self):
        self.opened = threading.Event()
        self.computed = threading.Semaphore(0)

    def wait_computed(self, count):
        for _ in range(count):
            assert self.computed.acquire(timeout=60), "reports not computed"


@pytest.fixture
def gate(monkeypatch):
    gate = Gate()
    compute = pipeline.compute_report

    def gated(progress=None, as_of_us=None):
        gate.opened.wait(30)
        try:
            return compute(progress)
        finally:
            gate.computed.release()

    monkeypatch.setattr(pipeline, "compute_report", gated)
    return gate


def hold_lock_once_claimed(url, ids):
    """Take the report queue's write lock (SQLite) once every report in `ids` is claimed
    (being computed)."""
    queue = queue_url(url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        engine = sa.create_engine(queue)
        with engine.connect() as conn:
            claimed = conn.execute(sa.select(sa.func.count()).where(
                Report.id.in_(ids), Report.worker.is_not(None))).scalar()
        engine.dispose()
        if claimed == len(ids):
            holder = sqlite3.connect(sa.engine.make_url(queue).database, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another writer: nobody else can write
            return holder
        time.sleep(0.05)
    raise AssertionError("reports not claimed")


def test_sqlite_report_end_waits_out_a_held_lock(tmp_path, gate):
    path = tmp_path / "store-monitor.sqlite3"
    url = f"sqlite:///{path}"
    app = lease_test_app(url, SQLITE_BUSY_TIMEOUT=0.2, FINAL_WRITE_SECONDS=30)
    try:
        load_data(app, tmp_path / "data", stores=300)
        client = app.test_client()
        ids = [client.post("/trigger_report").get_json()["report_id"] for _ in range(2)]
        holder = hold_lock_once_claimed(url, ids)
        gate.opened.set()
        gate.wait_computed(2)
        time.sleep(1)  # their ends are being retried
        assert set(states(url, ids).values()) == {Report.RUNNING}
        holder.execute("ROLLBACK")
        holder.close()
        # The reports' ends were retried meanwhile, and are recorded now.
        found = wait_until_ended(url, ids, time.monotonic() + MARGIN)
        assert set(found.values()) == {Report.COMPLETE}, found
    finally:
        close_app(app)


def test_sqlite_report_whose_end_cannot_be_recorded_fails_when_its_lease_expires(
        tmp_path, gate, caplog):
    path = tmp_path / "store-monitor.sqlite3"
    url = f"sqlite:///{path}"
    app = lease_test_app(url, SQLITE_BUSY_TIMEOUT=0.2, FINAL_WRITE_SECONDS=0.5)
    try:
        load_data(app, tmp_path / "data", stores=300)
        client = app.test_client()
        report_id = client.post("/trigger_report").get_json()["report_id"]
        holder = hold_lock_once_claimed(url, [report_id])
        gate.opened.set()
        gate.wait_computed(1)
        deadline = time.monotonic() + 30  # FINAL_WRITE_SECONDS, and then some
        while "could not record its end" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "could not record its end" in caplog.text
        holder.execute("ROLLBACK")
        holder.close()
        released = time.monotonic()
        # The process gave up recording the end and no longer renews the lease: its own
        # heartbeat fails the report once the lease is STALE seconds old.
        found = wait_until_ended(url, [report_id], released + STALE + MARGIN)
        assert found == {report_id: Report.ERROR}
        error = client.get(f"/get_report?report_id={report_id}").get_json()["error"]
        assert error.startswith("interrupted")
    finally:
        close_app(app)


def test_retries_last_only_through_outages_and_only_so_long():
    clock = [0.0]
    pauses = []

    def sleep(seconds):
        pauses.append(seconds)
        clock[0] += seconds

    def failing(error):
        def operation():
            raise error
        return operation

    outage = sa.exc.OperationalError("UPDATE report", {}, Exception("connection refused"))
    assert is_unavailable(outage)
    with pytest.raises(sa.exc.OperationalError):
        with_retries(failing(outage), 5, sleep=sleep, clock=lambda: clock[0])
    # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 = 3.1 s; the next pause (2, the cap) would pass 5 s.
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.6]

    pauses.clear()
    bug = ValueError("not an outage")
    with pytest.raises(ValueError):
        with_retries(failing(bug), 5, sleep=sleep, clock=lambda: clock[0])
    assert pauses == []

    attempts = iter([outage, outage, None])

    def heals():
        error = next(attempts)
        if error:
            raise error
        return "done"
    pauses.clear()
    assert with_retries(heals, 5, sleep=sleep, clock=lambda: clock[0]) == "done"
    assert pauses == [0.1, 0.2]
