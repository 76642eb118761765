"""Is the process holding a report still alive? Leases, process names, and recovery.

A running report names its process in `report.worker` and carries a lease
(`heartbeat_at`) that the process renews while it computes. A report whose lease expired,
or whose process on this host is gone, ends in error ("interrupted") instead of staying
running forever.
"""

import logging
import os
import socket
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from app.reports.counters import report_finished
from app.storage.database import queue_engine
from app.storage.models import Report, utcnow

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the process computing this report stopped before it finished"
_WORKER_IDS = {}


def worker_id():
    """This process's name in `report.worker`: host, pid, and a random part that tells apart
    processes reusing a pid. Worked out per pid, so a forked child gets its own."""
    pid = os.getpid()
    if pid not in _WORKER_IDS:
        _WORKER_IDS[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
    return _WORKER_IDS[pid]


def lease_expired(heartbeat_at):
    """True when a lease last renewed at `heartbeat_at` is older than STALE_REPORT_SECONDS."""
    return utcnow() - heartbeat_at > timedelta(seconds=current_app.config["STALE_REPORT_SECONDS"])


def abandoned(report):
    """True for a running report (a row or a `Report`) whose lease expired: its process
    stopped renewing it, so it will never finish."""
    return report.status == Report.RUNNING and lease_expired(report.heartbeat_at)


def settled(report, read_again):
    """`report` (a row, a `Report` or None), or, when it was abandoned, the same report read
    again by `read_again()` once it has been failed ("interrupted")."""
    if report is None or not abandoned(report):
        return report
    fail_interrupted([(report.id, report.worker)])
    return read_again()


def owner_is_dead(worker):
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


def recover_interrupted():
    """Fail the claimed reports whose lease expired or whose process on this host is gone.

    Returns how many reports this call failed (another process may have failed some first).
    """
    with queue_engine().connect() as conn:
        claimed = conn.execute(
            sa.select(Report.id, Report.worker, Report.heartbeat_at)
            .where(Report.status == Report.RUNNING)).all()
    gone = [(r.id, r.worker) for r in claimed
            if lease_expired(r.heartbeat_at) or owner_is_dead(r.worker)]
    failed = fail_interrupted(gone)
    if failed:
        log.warning("%d report(s) left running by a stopped process marked error", failed)
    return failed


def fail_interrupted(reports):
    """Mark running reports as error, each only if the same worker still holds it (it may
    have ended meanwhile).

    `reports` holds ``(report_id, worker)`` pairs. Returns how many were failed here.
    """
    failed = 0
    with queue_engine().begin() as conn:
        for report_id, worker in reports:
            failed += conn.execute(sa.update(Report).where(
                Report.id == report_id, Report.worker == worker,
                Report.status == Report.RUNNING
            ).values(status=Report.ERROR, error=INTERRUPTED, finished_at=utcnow())).rowcount
    for _ in range(failed):
        report_finished("error")
    return failed
