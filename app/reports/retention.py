"""Report retention: finished reports beyond `REPORT_RETENTION` lose their CSV.

The row stays, marked `expired_at`, so that its id answers `410 Gone` rather than `404`.
Every process's heartbeat applies the policy; the update is idempotent, so several
processes doing it at once agree.
"""

import re
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from app.reports import state, table_files
from app.storage.database import queue_engine, write_locking
from app.storage.models import Report, ReportCsv, utcnow

_UNITS = {"d": 86400, "h": 3600}
# Reports expired per statement: a bound on the ids one statement names.
EXPIRED_PER_STATEMENT = 500


def parse_policy(text):
    """``("count", n)``, ``("age", timedelta)`` or None (keep everything) for a policy text."""
    text = (text or "").strip().lower()
    if not text:
        return None
    if match := re.fullmatch(r"(\d+)", text):
        return "count", int(match.group(1))
    if match := re.fullmatch(r"(\d+)\s*([dh])", text):
        return "age", timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError(f"REPORT_RETENTION {text!r}: expected a number of reports (100), or "
                     "days or hours (7d, 12h)")


def expire_reports():
    """Delete the CSV (and the kept table) of finished reports outside the policy; returns
    how many."""
    policy = parse_policy(current_app.config["REPORT_RETENTION"])
    if policy is None:
        return 0
    kind, value = policy
    outside = (Report.id.not_in(sa.select(Report.id).order_by(Report.created_at.desc())
                                .limit(value).scalar_subquery())
               if kind == "count" else Report.created_at < utcnow() - value)
    # The write lock from the first statement: another writer between the read and the
    # writes would otherwise make them fail on SQLite.
    with write_locking(queue_engine()).begin() as conn:
        ids = conn.execute(sa.select(Report.id).where(
            Report.status.in_(Report.FINISHED), Report.expired_at.is_(None), outside)
        ).scalars().all()
        for chunk in range(0, len(ids), EXPIRED_PER_STATEMENT):
            some = ids[chunk:chunk + EXPIRED_PER_STATEMENT]
            conn.execute(sa.update(Report).where(Report.id.in_(some)).values(
                expired_at=utcnow()))
            conn.execute(sa.delete(ReportCsv).where(ReportCsv.report_id.in_(some)))
        expired = len(ids)
    if expired:
        state.forget()  # this process's polls answer 410 at once
        table_files.remove(ids)
    return expired


class ReportGone(Exception):
    """The report's CSV was deleted by the retention policy: its id answers 410."""

    def __init__(self, report_id):
        super().__init__(f"report {report_id} was deleted by the retention policy "
                         "(REPORT_RETENTION); trigger a new one")
