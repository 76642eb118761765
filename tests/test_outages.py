"""Database outages: requests answer 503 quickly, probes tell liveness from readiness, and
the log has one line per outage. The faults come from a TCP proxy the test controls."""

import logging
import sqlite3
import time

import pytest
import sqlalchemy as sa
from conftest import close_app, make_app

from app.extensions import db
from app.storage.database import queue_url

UNKNOWN = "/get_report?report_id=00000000-0000-4000-8000-000000000000"


def outage_test_app(url, **config):
    app = make_app(url, **{"REPORT_WORKERS": 1, "DATABASE_CONNECT_TIMEOUT": 2,
                           "READY_TIMEOUT": 2, "RETRY_AFTER_SECONDS": 7, **config})
    app.extensions["report_runner"].wake()  # start the heartbeat, as a served process does
    return app


@pytest.fixture
def outage_app(db_proxy):
    proxy, url = db_proxy
    app = outage_test_app(url)
    yield proxy, app
    close_app(app)


def timed(call):
    began = time.monotonic()
    result = call()
    return result, time.monotonic() - began


def assert_unavailable(response):
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "Service Unavailable",
        "message": "the database is unavailable at the moment; retry later"}
    assert response.headers["Retry-After"] == "7"


def wait_for_log(caplog, text, count=1, timeout=5):
    """Wait until `count` log lines start with `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(r.getMessage().startswith(text) for r in caplog.records) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} log lines with {text!r}")


def test_stopped_or_black_holed_database_gives_503_and_healthz_stays_up(outage_app, caplog):
    proxy, app = outage_app
    client = app.test_client()
    caplog.set_level(logging.INFO)
    assert client.get(UNKNOWN).status_code == 404
    assert client.get("/readyz").status_code == 200

    # Stopped: connecting is refused, so the answer comes at once.
    proxy.stop()
    response, took = timed(lambda: client.get(UNKNOWN))
    assert_unavailable(response)
    assert took < 1, took
    assert_unavailable(client.post("/trigger_report"))
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"] == "unreachable"

    # Back: the pool's dead connections are tested before use, so the first request works.
    proxy.forward()
    assert client.get(UNKNOWN).status_code == 404
    wait_for_log(caplog, "database reachable again")

    # Black-holed: connections open but nothing answers; the connect timeout (2 s) bounds
    # the wait, and the liveness probe never waits at all.
    proxy.blackhole()
    response, took = timed(lambda: client.get(UNKNOWN))
    assert_unavailable(response)
    assert took < 2 + 1.5, took
    health, took = timed(lambda: client.get("/healthz"))
    assert health.status_code == 200 and took < 0.5
    ready, took = timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503 and took < 2 + 1.5, took

    proxy.forward()
    assert client.get(UNKNOWN).status_code == 404
    assert client.get("/readyz").status_code == 200

    # Two outages, each logged once when it began and once when it ended, without a
    # traceback, although requests and the heartbeat (every 0.2 s) kept failing meanwhile.
    wait_for_log(caplog, "database reachable again", count=2)
    time.sleep(0.5)
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("database unreachable") for m in messages) == 2, messages
    assert sum(m.startswith("database reachable again") for m in messages) == 2, messages
    assert not [r for r in caplog.records if r.exc_info], messages


def test_statement_timeout_bounds_a_blocked_query(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("statement_timeout is a PostgreSQL setting (SQLite's busy timeout is "
                    "tested below)")
    app = outage_test_app(database_url, DATABASE_STATEMENT_TIMEOUT=1)
    client = app.test_client()
    locker = sa.create_engine(database_url)
    try:
        with locker.connect() as conn:
            # Another session holds the report table: every statement on it waits.
            conn.exec_driver_sql("LOCK TABLE report IN ACCESS EXCLUSIVE MODE")
            response, took = timed(lambda: client.get(UNKNOWN))
            conn.rollback()
        assert_unavailable(response)
        assert 1 <= took < 1 + 1.5, took
        assert client.get(UNKNOWN).status_code == 404
    finally:
        locker.dispose()
        close_app(app)


def test_service_connections_bound_statements_and_skip_the_jit(database_url):
    # PostgreSQL's JIT compiled the home page's query for 0.5 s at a million stores (30 ms
    # to run it); options in the URL are kept, and may turn it back on.
    if not database_url.startswith("postgresql"):
        pytest.skip("jit and statement_timeout are PostgreSQL settings")
    for url, jit in ((database_url, "off"), (_with_options(database_url, "-c jit=on"), "on")):
        app = outage_test_app(url, DATABASE_STATEMENT_TIMEOUT=7)
        try:
            with app.app_context(), db.engine.connect() as conn:
                assert (conn.exec_driver_sql("SHOW jit").scalar(),
                        conn.exec_driver_sql("SHOW statement_timeout").scalar()) == (jit, "7s")
        finally:
            close_app(app)


def _with_options(database_url, options):
    url = sa.engine.make_url(database_url)
    options = f"{url.query.get('options', '')} {options}".strip()  # the test's schema too
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


def test_sqlite_writer_lock_bounds_a_trigger_to_the_busy_timeout(tmp_path):
    path = tmp_path / "store-monitor.sqlite3"
    app = outage_test_app(f"sqlite:///{path}", SQLITE_BUSY_TIMEOUT=0.5)
    client = app.test_client()
    # The file a trigger writes: the report queue's own (test_ingest_contention.py shows that
    # a lock on the data file does not delay it).
    queue_file = tmp_path / "store-monitor-queue.sqlite3"
    assert queue_url(f"sqlite:///{path}").endswith(str(queue_file))
    holder = sqlite3.connect(queue_file, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer, holding the lock
        response, took = timed(lambda: client.post("/trigger_report"))
        assert_unavailable(response)
        assert took < 0.5 + 1, took
        assert client.get(UNKNOWN).status_code == 404  # readers are not blocked (WAL)
        assert client.get("/healthz").status_code == 200
        holder.execute("ROLLBACK")
        assert client.post("/trigger_report").status_code == 202
    finally:
        holder.close()
        close_app(app)
