"""A report's state: one frozen value (`ReportState`), read here and nowhere else, and
written as JSON by its `as_json`, for polls, `/api/v1/reports` and the pages alike.

Reading is cheap: polls are most of the traffic a busy service answers. A finished report
(Complete or Error) never changes again, except that retention may delete its CSV later,
after which its id answers 410. So each process keeps the states of finished reports it has
read for `FINISHED_STATE_SECONDS`: a report expired by another process answers 410 here at
most that long after; one expired by this process, at once. A Running report is read every
time, with one plain SQL statement; one whose lease expired is failed first.
"""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from app.engine.instants import datetime_us, iso_instant
from app.reports.liveness import settled
from app.storage.database import queue_engine
from app.storage.models import Report, ReportCsv

MAX_CACHED = 4096  # finished states per process; the least recently read go first
MAX_RENDERINGS = 4  # answers kept per finished state (one per host name it is asked through)

_COLUMNS = (Report.id, Report.status, Report.progress, Report.error, Report.row_count,
            Report.created_at, Report.finished_at, Report.expired_at, Report.as_of_us,
            Report.now_us, Report.reused_from, Report.worker, Report.heartbeat_at)
_READ = sa.select(*_COLUMNS).where(Report.id == sa.bindparam("report_id"))


@dataclass(frozen=True)
class ReportState:
    """What is known of one report, without its CSV. Instants are µs since the epoch (UTC).

    `job_status` is the queue's state (queued, running, complete, error); clients are told
    `status` (Running, Complete, Error).
    """

    report_id: str
    job_status: str
    progress: float
    error: str | None
    rows: int | None
    created_us: int
    finished_us: int | None
    expired: bool
    as_of_us: int | None
    now_us: int | None
    reused_from: str | None

    @classmethod
    def from_row(cls, row):
        return cls(report_id=row.id, job_status=row.status, progress=row.progress,
                   error=row.error, rows=row.row_count, created_us=datetime_us(row.created_at),
                   finished_us=datetime_us(row.finished_at),
                   expired=row.expired_at is not None, as_of_us=row.as_of_us,
                   now_us=row.now_us, reused_from=row.reused_from)

    @property
    def status(self):
        return Report.PUBLIC_STATUS[self.job_status]

    @property
    def finished(self):
        return self.job_status in Report.FINISHED

    @property
    def complete(self):
        return self.job_status == Report.COMPLETE

    @property
    def seconds(self):
        """From trigger to end [s], None while it runs."""
        if self.finished_us is None:
            return None
        return round((self.finished_us - self.created_us) / 1e6, 2)

    def as_json(self, download_url=None):
        """The report's state as clients see it (the `ReportState` schema): every field is
        always present, null when it does not apply; `download_url` once Complete."""
        return {
            "report_id": self.report_id, "status": self.status,
            "progress": round(self.progress, 2), "error": self.error, "rows": self.rows,
            "created_at": iso_instant(self.created_us),
            "finished_at": iso_instant(self.finished_us), "seconds": self.seconds,
            "as_of": iso_instant(self.as_of_us), "now": iso_instant(self.now_us),
            "reused_from": self.reused_from,
            "download_url": download_url if self.complete else None,
        }



def init_app(app):
    app.extensions["finished_states"] = FinishedStates()


def read(report_id):
    """The report's `ReportState`, or None for an unknown id; a Running report whose worker
    stopped renewing its lease is failed first. Only finished states are kept."""
    cache = current_app.extensions["finished_states"]
    state = cache.get(report_id, current_app.config["FINISHED_STATE_SECONDS"])
    if state is not None:
        return state
    row = settled(_select(report_id), lambda: _select(report_id))
    if row is None:
        return None
    state = ReportState.from_row(row)
    if state.finished:
        cache.put(report_id, state)
    return state


def recent(limit):
    """The `limit` newest reports' states, newest first (as stored: none is failed here)."""
    with queue_engine().connect() as conn:
        rows = conn.execute(sa.select(*_COLUMNS).order_by(Report.created_at.desc())
                            .limit(limit)).all()
    return [ReportState.from_row(row) for row in rows]


def rendered(report_id, variant, build):
    """`build()` for a finished report whose state is kept, once per `variant` (what else
    the answer depends on, such as the host it is asked through) for as long as the state."""
    return current_app.extensions["finished_states"].rendered(report_id, variant, build)


def csv_text(report_id):
    """A Complete report's CSV (megabytes: read only when asked for), None once expired."""
    with queue_engine().connect() as conn:
        return conn.execute(sa.select(ReportCsv.csv).where(ReportCsv.report_id == report_id)
                            ).scalar()


def forget():
    """Drop every cached state (after this process changed finished reports)."""
    current_app.extensions["finished_states"].clear()


def _select(report_id):
    with queue_engine().connect() as conn:
        return conn.execute(_READ, {"report_id": report_id}).first()


class FinishedStates:
    """A bounded map of report id to (state, when it was read, answers built from it), safe
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
