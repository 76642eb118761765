"""The report queue: the `report` table, and every statement that moves a report in it.

A trigger inserts a queued report. Any process with a free thread claims the oldest queued
report, making it running, in one atomic statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
has a single writer), so no report is computed twice. Changes to a claimed report go
through `update_held`, which only touches a report this process still holds.

Every statement here runs on a Core connection of the queue's engine, in a transaction of
its own: the queue never shares a request's session.
"""

import uuid

import sqlalchemy as sa
from blinker import Namespace
from flask import current_app

from app.extensions import db
from app.reports.liveness import worker_id
from app.storage.database import queue_engine, seconds_between, write_locking
from app.storage.models import DataVersion, Report, ReportCsv, utcnow

# Sent with the app as sender after a report is queued; the runner listens (`init_app`).
report_queued = Namespace().signal("report-queued")


class QueueFull(Exception):
    """Too many reports wait already; the client should come back in `retry_after` s."""

    def __init__(self, queued, retry_after):
        super().__init__(f"{queued} reports are queued already")
        self.queued = queued
        self.retry_after = retry_after


def start_report(as_of_us=None):
    """Queue a report, tell this process's runner, return its id.

    With `as_of_us`, the report is of the data as it stood at that instant. Raises
    `QueueFull` when `MAX_QUEUED_REPORTS` reports wait already.
    """
    _check_queue_room()
    report_id = str(uuid.uuid4())
    with queue_engine().begin() as conn:
        conn.execute(sa.insert(Report).values(id=report_id, status=Report.QUEUED,
                                              as_of_us=as_of_us))
    report_queued.send(current_app._get_current_object(), report_id=report_id)
    return report_id


def _check_queue_room():
    """Refuse a new report while the queue is full. Triggers arriving together may pass the
    count at once, so the queue can exceed the bound by as many as arrive in that instant."""
    limit = current_app.config["MAX_QUEUED_REPORTS"]
    with queue_engine().connect() as conn:
        queued = conn.execute(sa.select(sa.func.count()).select_from(Report).where(
            Report.status == Report.QUEUED)).scalar()
        if queued >= limit:
            raise QueueFull(queued, _seconds_until_room(conn, queued))


def _seconds_until_room(conn, queued):
    """About when a queued report will have been claimed: recent reports' mean duration
    times the reports ahead per report thread (1 s to 5 min)."""
    recent = (sa.select(seconds_between(Report.started_at, Report.finished_at).label("seconds"))
              .where(Report.status == Report.COMPLETE)
              .order_by(Report.finished_at.desc()).limit(10).subquery())
    mean = conn.execute(sa.select(sa.func.avg(recent.c.seconds))).scalar() or 0.0
    seconds = mean * queued / current_app.config["REPORT_WORKERS"]
    return int(min(300, max(1, round(seconds))))


def claim_next():
    """Atomically take the oldest queued report for this process, making it running; its id,
    or None."""
    # Another process's claim in progress is skipped where rows are locked (PostgreSQL),
    # waited for where the whole database is (SQLite, which renders no FOR UPDATE).
    oldest = (sa.select(Report.id)
              .where(Report.status == Report.QUEUED)
              .order_by(Report.created_at).limit(1)
              .with_for_update(skip_locked=True))
    now = utcnow()
    with write_locking(queue_engine()).begin() as conn:
        return conn.execute(
            sa.update(Report)
            .where(Report.id == oldest.scalar_subquery(), Report.status == Report.QUEUED)
            .values(status=Report.RUNNING, worker=worker_id(), started_at=now, heartbeat_at=now,
                    progress=0.05)
            .returning(Report.id)).scalar()


def has_unclaimed():
    """True when some report waits for a process to claim it."""
    with queue_engine().connect() as conn:
        unclaimed = conn.execute(sa.select(Report.id).where(
            Report.status == Report.QUEUED).limit(1)).first()
    return unclaimed is not None


def as_of_of(report_id):
    """The instant a report was asked for as of (µs), or None for a plain report."""
    with queue_engine().connect() as conn:
        return conn.execute(sa.select(Report.as_of_us).where(Report.id == report_id)).scalar()


def complete_report_of_current_data():
    """A Complete, computed report of the data version in the database now, if any: a new
    report may reuse its CSV, since nothing was ingested since."""
    with db.engine.connect() as conn:
        version = conn.execute(sa.select(DataVersion.version)).scalar()
    with queue_engine().connect() as conn:
        return conn.execute(
            sa.select(Report.id, ReportCsv.csv, Report.row_count, Report.data_version,
                      Report.now_us).join(ReportCsv, ReportCsv.report_id == Report.id)
            .where(Report.status == Report.COMPLETE, Report.data_version == version,
                   Report.reused_from.is_(None), Report.expired_at.is_(None),
                   Report.as_of_us.is_(None))
            .order_by(Report.finished_at).limit(1)).first()


def update_held(report_id, csv=None, **values):
    """Change a report this process holds; every change also renews the lease. `csv`: the
    CSV of a report made Complete, stored in the same transaction.

    Returns False when the report is no longer this process's (its lease was taken away).
    """
    values.setdefault("heartbeat_at", utcnow())
    with queue_engine().begin() as conn:
        changed = conn.execute(sa.update(Report).where(
            Report.id == report_id, Report.worker == worker_id(), Report.status == Report.RUNNING
        ).values(**values)).rowcount
        if changed == 1 and csv is not None:
            conn.execute(sa.insert(ReportCsv).values(report_id=report_id, csv=csv))
    return changed == 1


def renew_leases(report_ids):
    """Renew the leases of these reports, those of them this process still holds."""
    if not report_ids:
        return
    with queue_engine().begin() as conn:
        conn.execute(sa.update(Report).where(
            Report.id.in_(report_ids), Report.worker == worker_id(),
            Report.status == Report.RUNNING).values(heartbeat_at=utcnow()))

