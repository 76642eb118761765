"""Report jobs: create, run in a thread pool, record every state change in the database.

The `report` row is the only state: any process sharing the database answers polls the
same way. A process refreshes the heartbeat of the reports it owns while they are Running,
so a report whose process died is recognised (stale heartbeat) and never polled forever.
"""

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .engine import build_report
from .export import report_csv
from .extensions import db
from .models import Report, utcnow
from .snapshot import read_snapshot

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the process computing this report stopped before it finished"


def worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"


def init_app(app):
    app.extensions["report_executor"] = ThreadPoolExecutor(
        max_workers=app.config["REPORT_WORKERS"], thread_name_prefix="report")
    app.extensions["report_heartbeat"] = _Heartbeat(app)


def compute_csv(progress=None):
    """Read a snapshot, run the engine and format the CSV; returns ``(csv_text, result)``."""
    progress = progress or (lambda fraction: None)
    snapshot = read_snapshot()
    progress(0.4)
    result = build_report(snapshot.polls, snapshot.hours, snapshot.zones)
    progress(0.8)
    for row in result.warnings.itertuples():
        log.warning("store %s: %s", row.store_id, row.message)
    return report_csv(result.frame), result


def start_report():
    """Record a Running report, hand it to the thread pool and return its id."""
    report = Report(id=str(uuid.uuid4()), status=Report.RUNNING, worker=worker_id())
    db.session.add(report)
    db.session.commit()
    app = current_app._get_current_object()
    app.extensions["report_heartbeat"].start()
    app.extensions["report_executor"].submit(run_report, app, report.id)
    return report.id


def run_report(app, report_id):
    """Compute one report; whatever happens, its row leaves Running."""
    with app.app_context():
        began = time.monotonic()
        log.info("report %s started", report_id)
        try:
            _update(report_id, started_at=utcnow(), progress=0.05)
            text, result = compute_csv(lambda f: _update(report_id, progress=f))
            _update(report_id, status=Report.COMPLETE, csv=text, row_count=len(result.frame),
                    progress=1.0, finished_at=utcnow())
            log.info("report %s complete: %d stores in %.2f s", report_id, len(result.frame),
                     time.monotonic() - began)
        except Exception as exc:  # the job must end in Error, whatever went wrong
            log.error("report %s failed after %.2f s", report_id, time.monotonic() - began,
                      exc_info=True)
            _update(report_id, status=Report.ERROR, error=f"{type(exc).__name__}: {exc}",
                    finished_at=utcnow())


def get_report(report_id):
    """The report row, after failing it if its process stopped answering; None if unknown."""
    report = db.session.get(Report, report_id)
    if report is not None and report.status == Report.RUNNING and _is_stale(report):
        _fail_if_running([report_id])
        report = db.session.get(Report, report_id)
    return report


def fail_interrupted_reports():
    """At start-up: fail the Running reports of processes that are gone. Returns how many."""
    running = db.session.scalars(sa.select(Report).where(Report.status == Report.RUNNING)).all()
    gone = [r.id for r in running if _is_stale(r) or _owner_is_dead(r.worker)]
    _fail_if_running(gone)
    if gone:
        log.warning("%d report(s) left Running by a stopped process marked Error", len(gone))
    return len(gone)


def _fail_if_running(report_ids):
    """Mark reports Error as interrupted, unless they finished in the meantime."""
    if report_ids:
        db.session.execute(sa.update(Report)
                           .where(Report.id.in_(report_ids), Report.status == Report.RUNNING)
                           .values(status=Report.ERROR, error=INTERRUPTED, finished_at=utcnow()))
    db.session.commit()


def _is_stale(report):
    limit = timedelta(seconds=current_app.config["STALE_REPORT_SECONDS"])
    return utcnow() - report.heartbeat_at > limit


def _owner_is_dead(worker):
    """True when `worker` names a process of this host that no longer exists."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _update(report_id, **values):
    """Change a report row in its own short transaction; every change is also a heartbeat."""
    values.setdefault("heartbeat_at", utcnow())
    with db.engine.begin() as conn:
        conn.execute(sa.update(Report).where(Report.id == report_id).values(**values))


class _Heartbeat:
    """One thread per process refreshing `heartbeat_at` of the Running reports it owns."""

    def __init__(self, app):
        self._app = app
        self._thread = None
        self._lock = threading.Lock()

    def start(self):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._beat, name="report-heartbeat",
                                                daemon=True)
                self._thread.start()

    def _beat(self):
        interval = self._app.config["HEARTBEAT_SECONDS"]
        with self._app.app_context():
            engine, me = db.engine, worker_id()
            while True:
                time.sleep(interval)
                try:
                    with engine.begin() as conn:
                        conn.execute(sa.update(Report)
                                     .where(Report.worker == me, Report.status == Report.RUNNING)
                                     .values(heartbeat_at=utcnow()))
                except Exception:  # a busy database must not kill the heartbeat
                    log.warning("report heartbeat failed", exc_info=True)
