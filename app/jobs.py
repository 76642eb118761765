"""Report jobs: the `report` table is the queue, and every process of the service works it.

A trigger inserts an unclaimed Running row. Any process with a free thread claims the oldest
unclaimed report in one atomic statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
has a single writer), so no report is computed twice. The claimer renews a lease
(`heartbeat_at`) while it works; a report whose lease expired, or whose process on this host
is gone, ends in Error ("interrupted") instead of staying Running forever.
"""

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import defer

from . import failures, retention
from .cluster import Settings, compute_on_cluster
from .database import queue_engine
from .engine import ReportResult, build_report, report_as_of
from .export import report_csv
from .extensions import db
from .metrics import report_finished
from .models import DataVersion, Report, utcnow
from .outage import is_unavailable
from .retry import with_retries
from .ratelimit import QueueFull
from .snapshot import read_snapshot

log = logging.getLogger(__name__)

LOGGED_WARNINGS = 5  # per report; the rest are counted
INTERRUPTED = "interrupted: the process computing this report stopped before it finished"
_WORKER_IDS = {}


def worker_id():
    """This process's name in `report.worker`: host, pid, and a random part that tells apart
    processes reusing a pid. Worked out per pid, so a forked child gets its own."""
    pid = os.getpid()
    if pid not in _WORKER_IDS:
        _WORKER_IDS[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
    return _WORKER_IDS[pid]


def init_app(app):
    retention.parse_policy(app.config["REPORT_RETENTION"])  # a bad policy fails at start
    app.extensions["report_runner"] = ReportRunner(app)


def compute_csv(progress=None, as_of_us=None):
    """Read a snapshot, run the engine and format the CSV; returns ``(csv_text, result)``."""
    computed = compute_report(progress, as_of_us)
    return computed.csv, computed.result


@dataclass
class ComputedReport:
    csv: str
    result: ReportResult
    data_version: str | None


def compute_report(progress=None, as_of_us=None):
    """Read a snapshot, run the engine and format the CSV.

    With `as_of_us`, the report is computed as if the data ended at that instant.
    """
    progress = progress or (lambda fraction: None)
    version = None  # the cluster reads no data version: its reports are never reused
    if current_app.config["DASK_SCHEDULER"] and as_of_us is None:
        result = compute_on_cluster(db.engine.url, Settings.from_config(current_app.config),
                                    progress)
    else:  # a report as of an instant is computed here, also with a cluster configured
        snapshot = read_snapshot()
        version = snapshot.version
        progress(0.4)
        if as_of_us is None:
            result = build_report(snapshot.polls, snapshot.hours, snapshot.zones,
                                  threads=current_app.config["ENGINE_THREADS"])
        else:
            result = report_as_of(snapshot.polls, snapshot.hours, snapshot.zones, as_of_us)
    progress(0.8)
    warnings = result.warnings
    for row in warnings.head(LOGGED_WARNINGS).itertuples():
        log.warning("store %s: %s", row.store_id, row.message)
    if len(warnings) > LOGGED_WARNINGS:
        log.warning("... and %d more stores with data warnings", len(warnings) - LOGGED_WARNINGS)
    return ComputedReport(report_csv(result.frame), result, version)


def _complete_report_of_current_data():
    """A Complete, computed report of the data version in the database now, if any."""
    version = db.session.execute(sa.select(DataVersion.version)).scalar()
    found = db.session.execute(
        sa.select(Report.id, Report.csv, Report.row_count, Report.data_version, Report.now_us)
        .where(Report.status == Report.COMPLETE, Report.data_version == version,
               Report.reused_from.is_(None), Report.expired_at.is_(None),
               Report.as_of_us.is_(None))
        .order_by(Report.finished_at).limit(1)).first()
    db.session.remove()
    return found


def start_report(as_of_us=None):
    """Queue a report (an unclaimed Running row), wake this process's runner, return its id.

    With `as_of_us`, the report is of the data as it stood at that instant. Raises
    `QueueFull` (a 429) when `MAX_QUEUED_REPORTS` reports wait already.
    """
    _check_queue_room()
    report = Report(id=str(uuid.uuid4()), status=Report.RUNNING, as_of_us=as_of_us)
    db.session.add(report)
    db.session.commit()
    current_app.extensions["report_runner"].wake()
    return report.id


def _check_queue_room():
    """Refuse a new report while the queue is full. Triggers arriving together may pass the
    count at once, so the queue can exceed the bound by as many as arrive in that instant."""
    limit = current_app.config["MAX_QUEUED_REPORTS"]
    # A read of its own: on SQLite, a transaction that read first cannot always write later.
    with queue_engine().connect() as conn:
        queued = conn.execute(sa.select(sa.func.count()).select_from(Report).where(
            Report.status == Report.RUNNING, Report.worker.is_(None))).scalar()
        if queued >= limit:
            raise QueueFull(queued, _seconds_until_room(conn, queued))


def _seconds_until_room(conn, queued):
    """About when a queued report will have been claimed: recent reports' mean duration
    times the reports ahead per report thread (1 s to 5 min)."""
    recent = (sa.select((sa.func.julianday(Report.finished_at)
                         - sa.func.julianday(Report.started_at)).label("days"))
              if db.engine.dialect.name == "sqlite" else
              sa.select((sa.func.extract("epoch", Report.finished_at - Report.started_at)
                         / 86400.0).label("days")))
    recent = recent.where(Report.status == Report.COMPLETE) \
        .order_by(Report.finished_at.desc()).limit(10).subquery()
    mean_days = conn.execute(sa.select(sa.func.avg(recent.c.days))).scalar() or 0.0
    seconds = mean_days * 86400 * queued / current_app.config["REPORT_WORKERS"]
    return int(min(300, max(1, round(seconds))))


def get_report(report_id):
    """The report row, after failing it if its worker stopped answering; None if unknown.

    The CSV (up to megabytes) is loaded only if read: most polls never need it.
    """
    report = db.session.get(Report, report_id, options=[defer(Report.csv)])
    if report is not None and report.status == Report.RUNNING and report.worker \
            and _lease_expired(report.heartbeat_at):
        _fail_interrupted([(report.id, report.worker)])
        report = db.session.get(Report, report_id)
    return report


def recover_interrupted():
    """Fail the claimed reports whose lease expired or whose process on this host is gone.

    Returns how many reports were failed.
    """
    claimed = db.session.execute(
        sa.select(Report.id, Report.worker, Report.heartbeat_at)
        .where(Report.status == Report.RUNNING, Report.worker.is_not(None))).all()
    gone = [(r.id, r.worker) for r in claimed
            if _lease_expired(r.heartbeat_at) or _owner_is_dead(r.worker)]
    _fail_interrupted(gone)
    if gone:
        log.warning("%d report(s) left Running by a stopped process marked Error", len(gone))
    return len(gone)


def _fail_interrupted(reports):
    """Mark reports Error, each only if the same worker still holds it (it may have ended)."""
    failed = 0
    for report_id, worker in reports:
        failed += db.session.execute(sa.update(Report).where(
            Report.id == report_id, Report.worker == worker, Report.status == Report.RUNNING
        ).values(status=Report.ERROR, error=INTERRUPTED, finished_at=utcnow())).rowcount
    db.session.commit()
    for _ in range(failed):
        report_finished("error")


def _lease_expired(heartbeat_at):
    return utcnow() - heartbeat_at > timedelta(seconds=current_app.config["STALE_REPORT_SECONDS"])


def _owner_is_dead(worker):
    """True when `worker` names a process of this host that no longer exists."""
    host, pid, _token = (worker.split(":") + ["", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit() or worker == worker_id():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim_next():
    """Atomically take the oldest unclaimed report for this process; its id, or None."""
    oldest = (sa.select(Report.id)
              .where(Report.status == Report.RUNNING, Report.worker.is_(None))
              .order_by(Report.created_at).limit(1))
    engine = queue_engine()
    if engine.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    else:
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    now = utcnow()
    with engine.begin() as conn:
        return conn.execute(
            sa.update(Report)
            .where(Report.id == oldest.scalar_subquery(), Report.worker.is_(None))
            .values(worker=worker_id(), started_at=now, heartbeat_at=now, progress=0.05)
            .returning(Report.id)).scalar()


def run_report(report_id):
    """Compute a report this process has claimed and record how it ended.

    A database outage while it runs makes it Error (or, if the outage is short enough,
    does not matter); recording the final state is retried through an outage for
    `FINAL_WRITE_SECONDS`. If that fails too, the report stays Running for now, but this
    process stops renewing its lease, so it ends in Error once the lease expires.
    """
    began = time.monotonic()
    log.info("report %s started by %s", report_id, worker_id())
    try:
        with queue_engine().connect() as conn:
            as_of_us = conn.execute(
                sa.select(Report.as_of_us).where(Report.id == report_id)).scalar()
        # A report as of an instant is never reused, nor used for a plain one.
        if as_of_us is None and current_app.config["REUSE_REPORTS"] \
                and _reuse(report_id, began):
            return
        def progress(fraction):
            _record_progress(report_id, fraction)

        computed = (compute_report(progress) if as_of_us is None
                    else compute_report(progress, as_of_us))
        final = {"status": Report.COMPLETE, "csv": computed.csv,
                 "row_count": len(computed.result.frame),
                 # an as_of report has no data version: it is never reused
                 "data_version": None if as_of_us is not None else computed.data_version,
                 "now_us": getattr(computed.result, "now_us", None), "progress": 1.0}
    except Exception as exc:  # the job must end in Error, whatever went wrong
        message, reference = failures.describe(exc)
        log.error("report %s failed after %.2f s (reference %s)", report_id,
                  time.monotonic() - began, reference, exc_info=True)
        final = {"status": Report.ERROR, "error": message}
    seconds = time.monotonic() - began
    try:
        held = with_retries(lambda: _update(report_id, finished_at=utcnow(), **final),
                            current_app.config["FINAL_WRITE_SECONDS"])
    except Exception as exc:
        if not is_unavailable(exc):
            log.error("report %s: recording its end failed", report_id, exc_info=True)
        log.warning("report %s: could not record its end (%s); it fails when its lease "
                    "expires", report_id, final["status"])
        return
    outcome = final["status"].lower()
    if held:
        report_finished(outcome, seconds)
    log.info("report %s %s in %.2f s", report_id,
             outcome if held else "ended, but its lease was lost meanwhile", seconds)


def _record_progress(report_id, fraction):
    """Progress is worth a try, not a failed report: an outage here is only logged."""
    try:
        _update(report_id, progress=fraction)
    except Exception as exc:
        if not is_unavailable(exc):
            raise


def _reuse(report_id, began):
    """Complete the report with the CSV of a Complete report of the same data version, if
    there is one: nothing was ingested since, so its answer is this report's answer."""
    original = _complete_report_of_current_data()
    if original is None:
        return False
    done = _update(report_id, status=Report.COMPLETE, csv=original.csv,
                   row_count=original.row_count, data_version=original.data_version,
                   now_us=original.now_us,
                   reused_from=original.id, progress=1.0, finished_at=utcnow())
    log.info("report %s %s the CSV of report %s (data version %s, nothing ingested since) "
             "in %.2f s", report_id, "reuses" if done else "lost its lease reusing",
             original.id, original.data_version, time.monotonic() - began)
    return True


def _update(report_id, **values):
    """Change a report this process holds; every change also renews the lease.

    Returns False when the report is no longer this process's (its lease was taken away).
    """
    values.setdefault("heartbeat_at", utcnow())
    with queue_engine().begin() as conn:
        changed = conn.execute(sa.update(Report).where(
            Report.id == report_id, Report.worker == worker_id(), Report.status == Report.RUNNING
        ).values(**values)).rowcount
    return changed == 1


class ReportRunner:
    """This process's share of the work: a thread pool, and a heartbeat thread that renews
    the leases of its reports, fails interrupted ones and picks up reports nobody claimed."""

    def __init__(self, app):
        self.app = app
        self.size = app.config["REPORT_WORKERS"]
        self.executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="report")
        self._lock = threading.Lock()
        self._busy = 0
        self._computing = set()  # ids of the reports this process's threads are computing
        self._heartbeat = None
        self._stopping = threading.Event()
        # When the heartbeat last began a round (time.monotonic()); None: not started.
        self.last_beat = None

    def wake(self):
        """Let a free thread claim and run queued reports; start the heartbeat if needed."""
        with self._lock:
            if self._heartbeat is None:
                self.last_beat = time.monotonic()
                self._heartbeat = threading.Thread(target=self._beat, name="report-heartbeat",
                                                   daemon=True)
                self._heartbeat.start()
            if self._busy < self.size:
                self._busy += 1
                self.executor.submit(self._work)

    def shutdown(self):
        """Finish the reports in hand and stop the heartbeat."""
        self.executor.shutdown(wait=True)
        self._stopping.set()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def _work(self):
        try:
            with self.app.app_context():
                while (report_id := claim_next()) is not None:
                    with self._lock:
                        self._computing.add(report_id)
                    try:
                        run_report(report_id)
                    finally:
                        with self._lock:
                            self._computing.discard(report_id)
        except Exception as exc:  # never lose the thread's slot; the heartbeat wakes us again
            if not is_unavailable(exc):  # an outage is logged once, by app.outage
                log.error("report runner failed", exc_info=True)
        finally:
            with self._lock:
                self._busy -= 1

    def _beat(self):
        interval = self.app.config["HEARTBEAT_SECONDS"]
        while not self._stopping.wait(interval):
            self.last_beat = time.monotonic()
            try:
                with self.app.app_context():
                    self._renew_and_recover()
            except Exception as exc:  # a busy database must not stop the heartbeat
                if not is_unavailable(exc):  # an outage is logged once, by app.outage
                    log.warning("report heartbeat failed", exc_info=True)

    def _renew_and_recover(self):
        # Only reports a thread is computing: one whose end could not be recorded must let
        # its lease expire, or it would stay Running for as long as this process lives.
        with self._lock:
            computing = list(self._computing)
        if computing:
            with queue_engine().begin() as conn:
                conn.execute(sa.update(Report).where(
                    Report.id.in_(computing), Report.worker == worker_id(),
                    Report.status == Report.RUNNING).values(heartbeat_at=utcnow()))
        recover_interrupted()
        expired = retention.expire_reports()
        if expired:
            log.info("%d report(s) past REPORT_RETENTION: their CSV deleted", expired)
        unclaimed = db.session.execute(sa.select(Report.id).where(
            Report.status == Report.RUNNING, Report.worker.is_(None)).limit(1)).first()
        db.session.remove()
        if unclaimed:
            self.wake()
