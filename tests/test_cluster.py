"""Reports on a Dask cluster: the same bytes as one process, and faults that end the report.

The clusters are real: `distributed.LocalCluster` with two worker processes of one thread,
whose workers read PostgreSQL through ADBC as they would on other machines. The expected
CSV of every comparison is the single-process report of the same database, which the golden
tests and the engine tests check against hand-worked and reference values.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import BUNDLED_DATA, TEST_DATABASE, Reports, close_app, make_app, write_csv
from servers import PROJECT_DIR, free_port
from sqlalchemy.engine import make_url
from test_golden import CASE_IDS, CASES

from app.cluster.compute import Settings, compute_on_cluster
from app.extensions import db
from app.ingest.load import ingest
from app.reports.export import report_csv
from app.reports.pipeline import compute_report
from app.storage.models import Report
from bench.generate import generate_dataset, write_dataset

distributed = pytest.importorskip("distributed")

ON_POSTGRESQL = TEST_DATABASE != "sqlite"
needs_postgresql = pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="cluster reports read PostgreSQL through ADBC (SQLite is refused, see "
           "test_sqlite_is_refused_with_a_clear_reason); CI's PostgreSQL run executes these")

@pytest.fixture(scope="module")
def cluster_database():
    """One PostgreSQL schema for the module: the workers are told its URL once, when they
    start, as operators set DATABASE_URL on theirs. Each test empties it first."""
    schema = f"test_dask_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(TEST_DATABASE)
    url = make_url(TEST_DATABASE).update_query_dict({"options": f"-csearch_path={schema}"})
    yield admin, schema, url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.dispose()


def _local_cluster(database_url):
    return distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                    dashboard_address=":0", env={"DATABASE_URL": database_url})


@pytest.fixture(scope="module")
def cluster(cluster_database):
    with _local_cluster(cluster_database[2]) as local:
        yield local


def _make_app(cluster_database, scheduler, **config):
    admin, schema, url = cluster_database
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    return make_app(url, REPORT_WORKERS=1, DASK_SCHEDULER=scheduler,
                    DASK_CONNECT_TIMEOUT_SECONDS=2, **config)


@pytest.fixture
def cluster_app(cluster_database, cluster):
    app = _make_app(cluster_database, cluster.scheduler_address)
    yield app
    close_app(app)


def _single_process_csv(app):
    scheduler = app.config["DASK_SCHEDULER"]
    app.config["DASK_SCHEDULER"] = ""
    try:
        return compute_report().csv
    finally:
        app.config["DASK_SCHEDULER"] = scheduler


def _cluster_report(app, max_polls):
    settings = Settings.from_config({**app.config, "DASK_MAX_POLLS_PER_TASK": max_polls})
    return compute_on_cluster(db.engine.url, settings)


def _poll_count():
    return db.session.execute(sa.text("SELECT count(*) FROM store_status")).scalar()


@needs_postgresql
def test_bundled_data_through_the_api_matches_one_process(cluster_app, tmp_path):
    # One store gets 2,880 extra polls (every minute of two days), far more than the
    # others' ~185: with at most 1,000 polls a task it must get a task of its own while
    # the others share theirs.
    busy_store = "4771920904882720684"
    lines = ["store_id,timestamp_utc,status"] + [
        f"{busy_store},2023-01-{day} {h:02d}:{m:02d}:30 UTC,{'active' if m % 7 else 'inactive'}"
        for day in (18, 19) for h in range(24) for m in range(60)]
    write_csv(tmp_path / "busy", "store_status.csv", "\n".join(lines))
    cluster_app.config["DASK_MAX_POLLS_PER_TASK"] = 1_000
    with cluster_app.app_context():
        ingest(BUNDLED_DATA)
        ingest(tmp_path / "busy")
        expected = _single_process_csv(cluster_app)
        detail = _cluster_report(cluster_app, 1_000)
    assert expected.count("\n") == 297  # header and 296 stores
    assert detail.tasks >= (54586 + 2880) // 1_000 and detail.worker_pids.isdisjoint({os.getpid()})

    reports = Reports(cluster_app.test_client())
    done = reports.wait(reports.trigger(), timeout=120)
    assert done.headers["X-Report-Status"] == "Complete"
    assert done.get_data(as_text=True) == expected


@needs_postgresql
def test_generated_200k_polls_match_one_process(cluster_app, tmp_path):
    data = tmp_path / "generated"
    write_dataset(generate_dataset(1110, 8, seed=13), data)
    with cluster_app.app_context():
        ingest(data)
        assert _poll_count() >= 200_000
        expected = _single_process_csv(cluster_app)
        detail = _cluster_report(cluster_app, 20_000)
    assert detail.tasks >= 10 and len(detail.worker_pids) == 2
    assert report_csv(detail.frame) == expected


@needs_postgresql
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden_case_matches_one_process(cluster_app, case):
    with cluster_app.app_context():
        ingest(case)
        expected = _single_process_csv(cluster_app)
        # About four tasks a case, so that ranges of several stores and of one meet.
        detail = _cluster_report(cluster_app, max(1, _poll_count() // 4))
    assert report_csv(detail.frame) == expected


@needs_postgresql
def test_empty_database_gives_the_header_only(cluster_app):
    with cluster_app.app_context():
        detail = _cluster_report(cluster_app, 10)
        assert detail.tasks == 0 and detail.now_us is None
        assert report_csv(detail.frame) == _single_process_csv(cluster_app)


@needs_postgresql
def test_worker_reading_another_database_fails_the_report(cluster_database, tmp_path):
    # The workers' DATABASE_URL names another schema holding other data: the job's view
    # still applies there (same database), but the counts differ, and the report must end
    # in Error rather than mix in rows of the wrong data.
    admin, _schema, _url = cluster_database
    other = (admin, f"test_dask_other_{uuid.uuid4().hex[:12]}", None)
    other_url = make_url(TEST_DATABASE).update_query_dict(
        {"options": f"-csearch_path={other[1]}"}).render_as_string(hide_password=False)
    other_app = _make_app((*other[:2], other_url), "")
    app = _make_app(cluster_database, "")
    try:
        with other_app.app_context():
            ingest(write_csv(tmp_path / "other", "store_status.csv", """
                store_id,timestamp_utc,status
                4771920904882720684,2023-01-25 10:00:00 UTC,active
                """))
        with app.app_context():
            ingest(BUNDLED_DATA)
        with _local_cluster(other_url) as local:
            app.config["DASK_SCHEDULER"] = local.scheduler_address
            reports = Reports(app.test_client())
            done = reports.wait(reports.trigger(), timeout=120)
    finally:
        close_app(app)
        close_app(other_app)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {other[1]} CASCADE")
    assert done.get_json()["status"] == "Error"
    assert "does its DATABASE_URL name the service's database?" in done.get_json()["error"]


@needs_postgresql
def test_killed_worker_leaves_the_report_complete_or_error(cluster_database, tmp_path):
    data = tmp_path / "generated"
    # Small tasks (about 150): the report lasts seconds, so a worker dies while it runs.
    app = _make_app(cluster_database, "", DASK_MAX_POLLS_PER_TASK=500, REUSE_REPORTS=False)
    try:
        write_dataset(generate_dataset(400, 8, seed=7), data)
        with app.app_context():
            ingest(data)
            expected = _single_process_csv(app)
        with _local_cluster(cluster_database[2]) as local, \
                distributed.Client(local, set_as_default=False) as client:
            app.config["DASK_SCHEDULER"] = local.scheduler_address
            reports = Reports(app.test_client())
            # Kill a worker once tasks are under way: the report's progress has moved past
            # planning (0.1) but not reached the end. A report that ended before that (the
            # cluster was quicker than the test) is tried again: it killed nothing.
            for _attempt in range(3):
                report_id = reports.trigger()
                if _wait_for_progress(app, report_id, above=0.1):
                    break
            else:
                raise AssertionError("three reports ended before a worker could be killed")
            victim = next(iter(client.run(os.getpid).values()))
            os.kill(victim, signal.SIGKILL)
            done = reports.wait(report_id, timeout=180)
            state = done.headers.get("X-Report-Status") or done.get_json()["status"]
    finally:
        close_app(app)
    assert state in ("Complete", "Error")
    if state == "Complete":  # Dask ran the lost tasks again elsewhere
        assert done.get_data(as_text=True) == expected
    else:
        assert "report task failed on the cluster" in done.get_json()["error"]


def _wait_for_progress(app, report_id, above, timeout=60):
    """True once the running report's progress passes `above`; False if it ended first.
    A report still queued (its job not yet started) is waited for, not taken as ended."""
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            status, progress = db.session.execute(sa.text(
                "SELECT status, progress FROM report WHERE id = :id"), {"id": report_id}).one()
            db.session.remove()
            if status in Report.FINISHED:
                return False
            if status == Report.RUNNING and progress > above:
                return True
            time.sleep(0.01)
    raise AssertionError("no task of the report finished in time")


@needs_postgresql
@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_unreachable_scheduler_ends_the_report_in_error_within_seconds(cluster_database, kind):
    # "refused": nothing listens on the port. "silent": a socket accepts connections (the
    # kernel completes the handshake) but never answers, like a hung scheduler.
    listener = None
    if kind == "silent":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
    else:
        port = free_port()
    app = _make_app(cluster_database, f"tcp://127.0.0.1:{port}")
    try:
        reports = Reports(app.test_client())
        began = time.monotonic()
        done = reports.wait(reports.trigger(), timeout=30)
        elapsed = time.monotonic() - began
    finally:
        close_app(app)
        if listener is not None:
            listener.close()
    assert done.get_json()["status"] == "Error"
    assert done.get_json()["error"].startswith(
        "the Dask scheduler (DASK_SCHEDULER) did not answer within 2 s (reference ")
    # The connect timeout is 2 s; the rest is slack for a loaded machine.
    assert elapsed < 20


@pytest.mark.skipif(ON_POSTGRESQL, reason="checks the SQLite refusal; the SQLite run does")
def test_sqlite_is_refused_with_a_clear_reason(app):
    app.config["DASK_SCHEDULER"] = "tcp://127.0.0.1:1"
    reports = Reports(app.test_client())
    done = reports.wait(reports.trigger(), timeout=30)
    assert done.get_json()["status"] == "Error"
    assert done.get_json()["error"].startswith(
        "reports on a Dask cluster need a PostgreSQL DATABASE_URL (reference ")


def _dask(*args, log, cwd, **env):
    """A `dask` command as the docs give it, in its own process group (so that its worker
    processes stop with it), with this environment but PYTHONPATH, and `env`."""
    return subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args], cwd=cwd,
                            env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                                 **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@needs_postgresql
def test_documented_scheduler_and_worker_commands_compute_the_report(cluster_database,
                                                                    tmp_path):
    """`dask scheduler` and `dask worker` started as docs/cluster.md says: the scheduler
    without this package (not importable where it runs), the workers from a checkout."""
    port = free_port()
    processes = []
    with open(tmp_path / "scheduler.log", "wb") as scheduler_log, \
            open(tmp_path / "worker.log", "wb") as worker_log:
        try:
            processes.append(_dask("scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--dashboard-address", ":0", log=scheduler_log,
                                   cwd=tmp_path))
            processes.append(_dask("worker", f"tcp://127.0.0.1:{port}", "--nworkers", "2",
                                   "--nthreads", "1", log=worker_log, cwd=PROJECT_DIR,
                                   DATABASE_URL=cluster_database[2],
                                   PYTHONPATH=str(PROJECT_DIR)))
            with distributed.Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
                client.wait_for_workers(2, timeout=40)
                # The scheduler cannot import the package: the test proves it needs none.
                assert not client.run_on_scheduler(
                    lambda: __import__("importlib.util").util.find_spec("app") is not None)
            app = _make_app(cluster_database, f"tcp://127.0.0.1:{port}",
                            DASK_MAX_POLLS_PER_TASK=20_000)
            try:
                with app.app_context():
                    ingest(BUNDLED_DATA)
                    expected = _single_process_csv(app)
                reports = Reports(app.test_client())
                done = reports.wait(reports.trigger(), timeout=60)
                assert done.headers["X-Report-Status"] == "Complete", done.get_json()
                assert done.get_data(as_text=True) == expected
            finally:
                close_app(app)
        finally:
            for process in reversed(processes):
                _stop(process)
    assert b"deserialization" not in (tmp_path / "scheduler.log").read_bytes()
