"""A report's state as a poll of `/get_report` reads it, at little cost: polls are most of
the traffic a busy service answers.

A finished report (Complete or Error) never changes again, except that retention may delete
its CSV later, after which its id answers 410. So each process keeps the states of finished
reports it has read for `FINISHED_STATE_SECONDS`: a report expired by another process
answers 410 here at most that long after; one expired by this process, at once. A Running
report is read every time, with one plain SQL statement rather than through the ORM.
"""

import threading
import time
from collections import OrderedDict

import sqlalchemy as sa
from flask import current_app

from .database import queue_engine
from .liveness import settled
from .models import Report

MAX_CACHED = 4096  # finished states per process; the least recently read go first
MAX_RENDERINGS = 4  # answers kept per finished state (one per host name it is asked through)

_READ = sa.select(
    Report.id, Report.status, Report.progress, Report.error, Report.row_count,
    Report.created_at, Report.finished_at, Report.expired_at, Report.as_of_us, Report.now_us,
    Report.reused_from, Report.worker, Report.heartbeat_at,
).where(Report.id == sa.bindparam("report_id"))


def init_app(app):
    app.extensions["finished_states"] = FinishedStates()


def read(report_id):
    """The report's state (a row of `_READ`'s columns), or None for an unknown id; a Running
    report whose worker stopped renewing its lease is failed first. Only finished states
    are kept."""
    cache = current_app.extensions["finished_states"]
    row = cache.get(report_id, current_app.config["FINISHED_STATE_SECONDS"])
    if row is not None:
        return row
    row = settled(_select(report_id), lambda: _select(report_id))
    if row is not None and row.status in Report.FINISHED:
        cache.put(report_id, row)
    return row


def rendered(report_id, variant, build):
    """`build()` for a finished report whose state is kept, once per `variant` (what else
    the answer depends on, such as the host it is asked through) for as long as the state."""
    return current_app.extensions["finished_states"].rendered(report_id, variant, build)


def csv_text(report_id):
    """A Complete report's CSV (megabytes: read only when asked for)."""
    with queue_engine().connect() as conn:
        return conn.execute(sa.select(Report.csv).where(Report.id == report_id)).scalar()


def forget():
    """Drop every cached state (after this process changed finished reports)."""
    current_app.extensions["finished_states"].clear()


def _select(report_id):
    with queue_engine().connect() as conn:
        return conn.execute(_READ, {"report_id": report_id}).first()


class FinishedStates:
    """A bounded map of report id to (row, when it was read, answers built from it), safe
    across threads."""

    def __init__(self):
        self._rows = OrderedDict()
        self._lock = threading.Lock()

    def get(self, report_id, max_age):
        with self._lock:
            found = self._rows.get(report_id)
            if found is None:
                return None
            row, read_at, _answers = found
            if time.monotonic() - read_at > max_age:
                del self._rows[report_id]
                return None
            self._rows.move_to_end(report_id)
            return row

    def put(self, report_id, row):
        with self._lock:
            self._rows[report_id] = (row, time.monotonic(), {})
            self._rows.move_to_end(report_id)
            while len(self._rows) > MAX_CACHED:
                self._rows.popitem(last=False)

    def rendered(self, report_id, variant, build):
        with self._lock:
            found = self._rows.get(report_id)
            if found is not None and variant in found[2]:
                return found[2][variant]
        answer = build()
        with self._lock:
            found = self._rows.get(report_id)
            if found is not None and len(found[2]) < MAX_RENDERINGS:
                found[2][variant] = answer
        return answer

    def clear(self):
        with self._lock:
            self._rows.clear()
