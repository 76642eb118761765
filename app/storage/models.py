"""Tables of the service.

Store ids are opaque strings; every other table refers to a store through the small integer
`Store.id`, which keeps the hot tables narrow and lets a report read millions of polls as
integer columns. Instants are stored as integer microseconds since the Unix epoch, in UTC
(`*_us` columns): exact, compact, and read without any date parsing.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[str] = mapped_column(unique=True)


HOUR_US = 3_600_000_000


class StoreStatus(db.Model):
    """One poll: the store was `active` (True) or not at `timestamp_us`.

    The key begins with `hour` (``timestamp_us // HOUR_US``, hours since the epoch), so the
    table is ordered by hour, then store, then instant: an hour of polls, one per store, is
    one run of adjacent pages, and an hourly ingest writes a few hundred pages instead of a
    page per store (14,000 stores: a commit of 0.28 s became 2 ms). A query for some stores
    names the hours to look in (`app.storage.store_snapshot.hours_with_polls`).

    `store_pk` has no foreign key on purpose: checking one for each of millions of rows
    tripled the time of a bulk load on PostgreSQL, and ingest registers every store in
    the same transaction before it writes its polls.
    """

    __tablename__ = "store_status"
    hour: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    store_pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    timestamp_us: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True,
                                              autoincrement=False)
    active: Mapped[bool]
    __table_args__ = (sa.PrimaryKeyConstraint("hour", "store_pk", "timestamp_us",
                                              name="store_status_pkey"),
                      {"sqlite_with_rowid": False})


def hour_of(timestamp_us):
    """The `StoreStatus.hour` of instants (int64 µs since the epoch; numpy arrays too)."""
    return timestamp_us // HOUR_US


class BusinessHours(db.Model):
    """One weekly opening span in local wall time, in seconds after local midnight.

    `store_pk` has no foreign key, as in `StoreStatus`: checking it row by row was most of
    PostgreSQL's work to load the hours."""

    __tablename__ = "business_hours"
    id: Mapped[int] = mapped_column(primary_key=True)
    store_pk: Mapped[int] = mapped_column(index=True)
    day_of_week: Mapped[int] = mapped_column(sa.SmallInteger)  # 0 = Monday
    start_local_s: Mapped[int]
    end_local_s: Mapped[int]


class StoreTimezone(db.Model):
    """The zone name as given; the engine resolves unknown names to the default zone.
    `store_pk` has no foreign key, as in `BusinessHours`."""

    __tablename__ = "store_timezone"
    store_pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    timezone_str: Mapped[str]


class Report(db.Model):
    """A report job and, once complete, its CSV, so that any process can serve it.

    It lives in the report queue's database (`app.storage.database.queue_url`). Its job state is
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

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=QUEUED, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The process that claimed the job (None: queued), and its lease: refreshed while the
    # job runs, so a stale heartbeat means that process died.
    worker: Mapped[str | None] = mapped_column(sa.String(200))
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    progress: Mapped[float] = mapped_column(sa.Float, default=0.0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    row_count: Mapped[int | None]
    # Set when the retention policy (REPORT_RETENTION) deleted the CSV: the id answers 410.
    expired_at: Mapped[datetime | None]
    # The data version the CSV is the report of, and the report it was copied from when
    # nothing had been ingested since that one completed (None: computed).
    data_version: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    reused_from: Mapped[str | None] = mapped_column(sa.String(36))
    # Asked for as of this instant (None: the latest poll); the `now` it was computed with.
    as_of_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    now_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    __table_args__ = (sa.CheckConstraint(
        "status IN ('queued', 'running', 'complete', 'error')", name="report_status_known"),)


class ReportCsv(db.Model):
    """A Complete report's CSV, in a table of its own: SQLite stores a row's values in order
    and a large one over a chain of pages, so reading any column after a CSV of a million
    stores (60 MB) in the same row would walk the whole chain (13 ms a row, at every read
    of a report's state)."""

    __bind_key__ = "queue"
    __tablename__ = "report_csv"
    report_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    csv: Mapped[str] = mapped_column(sa.Text)


class DataVersion(db.Model):
    """The single row naming the committed data: a new random `version` per ingest, how
    many polls and stores with polls that data holds, its earliest and latest poll, and how
    many stores there are and how many lack business hours, a zone or a known zone.

    Every ingest keeps the counts (counting 190 M polls takes minutes, probing a million
    stores for hours a second); None means not known without counting (after a removal,
    or a database loaded before they were kept). The stores' facts count only while
    `facts_version` is `version`: a writer that changes the data without them leaves
    them unused rather than wrong.
    """

    __tablename__ = "data_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(32))
    polls: Mapped[int | None] = mapped_column(sa.BigInteger)
    stores_with_polls: Mapped[int | None]
    stores: Mapped[int | None]
    stores_without_business_hours: Mapped[int | None]
    stores_without_timezone: Mapped[int | None]
    stores_with_unknown_timezone: Mapped[int | None]
    facts_version: Mapped[str | None] = mapped_column(sa.String(32))
    first_poll_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    latest_poll_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    __table_args__ = (sa.CheckConstraint("id = 1", name="data_version_single_row"),)


class Ingest(db.Model):
    """One load of input files; `fingerprint` lets start-up skip data it already loaded."""

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str]
    fingerprint: Mapped[str] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestFile(db.Model):
    """Row accounting of one file: read = loaded + duplicate + rejected."""

    __tablename__ = "ingest_file"
    id: Mapped[int] = mapped_column(primary_key=True)
    ingest_id: Mapped[int] = mapped_column(sa.ForeignKey("ingest.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str]
    read: Mapped[int]
    loaded: Mapped[int]
    duplicate: Mapped[int]
    rejected: Mapped[int]


class IngestRejection(db.Model):
    """A row that was not loaded, and why."""

    __tablename__ = "ingest_rejection"
    id: Mapped[int] = mapped_column(primary_key=True)
    ingest_id: Mapped[int] = mapped_column(sa.ForeignKey("ingest.id"), index=True)
    file: Mapped[str]
    line: Mapped[int]
    reason: Mapped[str]


class ApiKey(db.Model):
    """A client's key. Only its SHA-256 is kept: the key itself is shown once, at creation."""

    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(12))  # shown by `flask keys list`
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class WebSession(db.Model):
    """A dashboard sign-in (app.auth.signin): the browser's cookie holds a random token, this
    row its SHA-256, so that signing out (deleting the row) ends the session everywhere."""

    __tablename__ = "web_session"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# Live state and alerts (app.live) ----------------------------------------------------------

# The end of an incident still open: larger than every instant, so that "ends after t" is one
# range of the index (store_pk, end_us) for open and closed incidents alike.
OPEN_END_US = 2**62


class LiveMeta(db.Model):
    """The single row of the live state: the `now` it was brought to, the earliest poll,
    how many stores are in each state and how many down stores have no open incident
    (None: not known, counted when asked)."""

    __tablename__ = "live_meta"
    id: Mapped[int] = mapped_column(primary_key=True)
    now_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    first_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    stores_up: Mapped[int | None]
    stores_down: Mapped[int | None]
    stores_closed: Mapped[int | None]
    stores_silent: Mapped[int | None]
    # Nearly always 0 (a down store's downtime is an open incident): the home page looks
    # for such stores only when there are some.
    stores_down_without_incident: Mapped[int | None]
    __table_args__ = (sa.CheckConstraint("id = 1", name="live_meta_single_row"),)


class LiveStore(db.Model):
    """A store's state at `now`: up, down, closed or silent, since when, and what decides it
    (its latest poll, its latest observation in business time).

    The row repeats the store's id, indexed after the state: a page of the stores in one
    state, in order of store id, is one range of that index."""

    __tablename__ = "live_store"
    store_pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    store_id: Mapped[str]
    state: Mapped[str] = mapped_column(sa.String(8))
    since_us: Mapped[int] = mapped_column(sa.BigInteger)
    latest_us: Mapped[int] = mapped_column(sa.BigInteger)
    counted_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    counted_active: Mapped[bool | None]
    # When business time next begins or ends: the state can change without a new poll then.
    next_us: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    __table_args__ = (sa.Index("ix_live_store_state_store_id", "state", "store_id"),)


class Incident(db.Model):
    """A kept incident: a maximal stretch of business time counted as down. `end_us` is
    `OPEN_END_US` while it is open."""

    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(primary_key=True)
    store_pk: Mapped[int] = mapped_column(sa.Integer)
    start_us: Mapped[int] = mapped_column(sa.BigInteger)
    end_us: Mapped[int] = mapped_column(sa.BigInteger)
    # A store's incidents by end, with their start (a store's open incident's start is
    # read from the index alone). Pages of incidents go in order of (start_us, id): all of
    # them, or the open ones (end_us = OPEN_END_US), which need an index of their own:
    # found through the first order, the oldest open ones lie past every closed incident.
    __table_args__ = (sa.Index("ix_incident_store_end_start", "store_pk", "end_us", "start_us"),
                      sa.Index("ix_incident_start", "start_us", "id"),
                      sa.Index("ix_incident_end_start", "end_us", "start_us", "id"))


class Webhook(db.Model):
    """A receiver of alerts: its URL, the secret its deliveries are signed with, the event
    types it wants (comma-separated) and how long an incident must last before it hears."""

    __tablename__ = "webhook"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.Text)
    secret: Mapped[str] = mapped_column(sa.Text)
    events: Mapped[str] = mapped_column(sa.Text)
    min_minutes: Mapped[float] = mapped_column(sa.Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEvent(db.Model):
    """An event as delivered: its id and the exact body every attempt sends."""

    __tablename__ = "webhook_event"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(32))
    incident_id: Mapped[int | None] = mapped_column(index=True)
    created_us: Mapped[int] = mapped_column(sa.BigInteger)
    body: Mapped[str] = mapped_column(sa.Text)


class WebhookDelivery(db.Model):
    """One event for one webhook: pending until a 2xx answer (delivered) or a day of
    attempts (failed). A process holds it while `lease_us` is in the future."""

    __tablename__ = "webhook_delivery"
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook.id", ondelete="CASCADE"),
                                            index=True)
    event_id: Mapped[str] = mapped_column(sa.String(36), sa.ForeignKey("webhook_event.id"))
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    created_us: Mapped[int] = mapped_column(sa.BigInteger)
    next_us: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    lease_us: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    __table_args__ = (sa.Index("ix_webhook_delivery_due", "state", "next_us"),)


class WebhookAttempt(db.Model):
    """One POST of a delivery and its outcome (HTTP status, or what failed)."""

    __tablename__ = "webhook_attempt"
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True)
    at_us: Mapped[int] = mapped_column(sa.BigInteger)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    seconds: Mapped[float] = mapped_column(sa.Float)


class WebhookNotice(db.Model):
    """Which incidents a webhook has been told of (those shorter than its `min_minutes`
    are not, until they last that long)."""

    __tablename__ = "webhook_notice"
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook.id", ondelete="CASCADE"),
                                            primary_key=True, autoincrement=False)
    incident_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
