"""Tables of the service.

Store ids are opaque strings; every other table refers to a store through the small integer
`Store.id`, which keeps the hot tables narrow and lets a report read millions of polls as
integer columns. Instants are stored as integer microseconds since the Unix epoch, in UTC
(`*_us` columns): exact, compact, and read without any date parsing.
"""

from datetime import datetime, timezone

from .extensions import db


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    store_id = db.Column(db.String, nullable=False, unique=True)


class StoreStatus(db.Model):
    """One poll: the store was `active` (True) or not at `timestamp_us`.

    `store_pk` has no foreign key on purpose: checking one for each of millions of rows
    tripled the time of a bulk load on PostgreSQL, and ingest registers every store in
    the same transaction before it writes its polls.
    """

    __tablename__ = "store_status"
    store_pk = db.Column(db.Integer, primary_key=True, autoincrement=False)
    timestamp_us = db.Column(db.BigInteger, primary_key=True, autoincrement=False)
    active = db.Column(db.Boolean, nullable=False)
    __table_args__ = {"sqlite_with_rowid": False}


class BusinessHours(db.Model):
    """One weekly opening span in local wall time, in seconds after local midnight."""

    __tablename__ = "business_hours"
    id = db.Column(db.Integer, primary_key=True)
    store_pk = db.Column(db.Integer, db.ForeignKey("store.id"), nullable=False, index=True)
    day_of_week = db.Column(db.SmallInteger, nullable=False)  # 0 = Monday
    start_local_s = db.Column(db.Integer, nullable=False)
    end_local_s = db.Column(db.Integer, nullable=False)


class StoreTimezone(db.Model):
    """The zone name as given; the engine resolves unknown names to the default zone."""

    __tablename__ = "store_timezone"
    store_pk = db.Column(db.Integer, db.ForeignKey("store.id"), primary_key=True,
                         autoincrement=False)
    timezone_str = db.Column(db.String, nullable=False)


class Report(db.Model):
    """A report job and, once complete, its CSV, so that any process can serve it.

    It lives in the report queue's database (`app.database.queue_url`). Its job state is
    one of `STATES`: queued (no process claimed it yet), running (`worker` holds its lease),
    complete or error. Clients are told `PUBLIC_STATUS[status]`, the seed's three words.
    """

    __bind_key__ = "queue"
    QUEUED, RUNNING, COMPLETE, ERROR = "queued", "running", "complete", "error"
    STATES = (QUEUED, RUNNING, COMPLETE, ERROR)
    FINISHED = (COMPLETE, ERROR)
    # What the API and pages answer: queued and running are both "Running" to a client.
    PUBLIC_STATUS = {QUEUED: "Running", RUNNING: "Running", COMPLETE: "Complete",
                     ERROR: "Error"}

    id = db.Column(db.String(36), primary_key=True)
    status = db.Column(db.String(16), nullable=False, default=QUEUED, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime)
    finished_at = db.Column(db.DateTime)
    # The process that claimed the job (None: not claimed yet), and its lease: refreshed
    # while the job runs, so a stale heartbeat means that process died.
    worker = db.Column(db.String(200))
    heartbeat_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    progress = db.Column(db.Float, nullable=False, default=0.0)
    error = db.Column(db.Text)
    row_count = db.Column(db.Integer)
    csv = db.Column(db.Text)
    # Set when the retention policy (REPORT_RETENTION) deleted the CSV: the id answers 410.
    expired_at = db.Column(db.DateTime)
    # The data version the CSV is the report of, and the report it was copied from when
    # nothing had been ingested since that one completed (None: computed).
    data_version = db.Column(db.String(32), index=True)
    reused_from = db.Column(db.String(36))
    # Asked for as of this instant (None: the latest poll); the `now` it was computed with.
    as_of_us = db.Column(db.BigInteger)
    now_us = db.Column(db.BigInteger)
    __table_args__ = (db.CheckConstraint(
        "status IN ('queued', 'running', 'complete', 'error')", name="report_status_known"),)


class DataVersion(db.Model):
    """The single row naming the committed data: a new random `version` per ingest."""

    __tablename__ = "data_version"
    id = db.Column(db.Integer, primary_key=True)
    version = db.Column(db.String(32), nullable=False)
    __table_args__ = (db.CheckConstraint("id = 1", name="data_version_single_row"),)


class Ingest(db.Model):
    """One load of input files; `fingerprint` lets start-up skip data it already loaded."""

    id = db.Column(db.Integer, primary_key=True)
    source = db.Column(db.String, nullable=False)
    fingerprint = db.Column(db.String(64), nullable=False, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class IngestFile(db.Model):
    """Row accounting of one file: read = loaded + duplicate + rejected."""

    __tablename__ = "ingest_file"
    id = db.Column(db.Integer, primary_key=True)
    ingest_id = db.Column(db.Integer, db.ForeignKey("ingest.id"), nullable=False, index=True)
    kind = db.Column(db.String(16), nullable=False)
    name = db.Column(db.String, nullable=False)
    read = db.Column(db.Integer, nullable=False)
    loaded = db.Column(db.Integer, nullable=False)
    duplicate = db.Column(db.Integer, nullable=False)
    rejected = db.Column(db.Integer, nullable=False)


class IngestRejection(db.Model):
    """A row that was not loaded, and why."""

    __tablename__ = "ingest_rejection"
    id = db.Column(db.Integer, primary_key=True)
    ingest_id = db.Column(db.Integer, db.ForeignKey("ingest.id"), nullable=False, index=True)
    file = db.Column(db.String, nullable=False)
    line = db.Column(db.Integer, nullable=False)
    reason = db.Column(db.String, nullable=False)


class ApiKey(db.Model):
    """A client's key. Only its SHA-256 is kept: the key itself is shown once, at creation."""

    __tablename__ = "api_key"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(100), nullable=False, unique=True)
    key_hash = db.Column(db.String(64), nullable=False, unique=True)
    prefix = db.Column(db.String(12), nullable=False)  # shown by `flask keys list`
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    revoked_at = db.Column(db.DateTime)
