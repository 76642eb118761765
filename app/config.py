"""Every setting of the service, read from the environment (and a `.env` file)."""

import os
import sys
from pathlib import Path

from dotenv import load_dotenv

PROJECT_DIR = Path(__file__).resolve().parent.parent
BUNDLED_DATA = PROJECT_DIR / "data" / "store-monitoring-data.zip"

load_dotenv(PROJECT_DIR / ".env")


def database_url_from_environment():
    """`DATABASE_URL`, with the `postgres://` spelling some hosts use rewritten for SQLAlchemy.

    None means "a SQLite file in the instance folder", which only the factory knows.
    """
    url = os.environ.get("DATABASE_URL") or None
    if url and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return url


def _number(name, default, kind):
    """The setting `name` from the environment as `kind` (int or float); `default` when it is
    unset or empty. A value that is not a number ends the process with one line on standard
    error and exit status 1, in every command and server alike: a typo in a setting shows no
    traceback, and starts nothing configured otherwise than asked."""
    text = os.environ.get(name, "").strip()
    if not text:
        return kind(default)
    try:
        return kind(text)
    except ValueError:
        refuse_setting(f"setting {name}={text[:50]!r} is not "
                       f"{'a whole number' if kind is int else 'a number'}")


def refuse_setting(message):
    """End the process over a mistaken setting: `message` as one line on standard error,
    exit status 1."""
    sys.stderr.write(f"{message}\n")
    raise SystemExit(1)


def usable_cpus():
    """CPUs this process may run on (its affinity, which containers narrow), else all."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Config:
    SQLALCHEMY_DATABASE_URI = database_url_from_environment()
    # The report queue's database; unset: on SQLite a second file beside the data file,
    # otherwise the data's database (see `app.storage.database.queue_url`).
    QUEUE_DATABASE_URL = os.environ.get("QUEUE_DATABASE_URL") or None
    # A zip archive, a folder or a single CSV file loaded when a server starts; "" loads
    # nothing. Unset: the bundled demo, but only into the default SQLite database (with
    # DATABASE_URL set, nothing).
    STORE_DATA = os.environ.get("STORE_DATA",
                                "" if os.environ.get("DATABASE_URL") else str(BUNDLED_DATA))
    HOST = os.environ.get("HOST", "127.0.0.1")
    PORT = _number("PORT", "5000", int)
    # run.py (waitress): request threads, open connections, seconds before a silent one closes.
    # Serving processes (each an event loop and SERVER_THREADS threads on one port, shared
    # with SO_REUSEPORT); 1 serves in the process run.py starts.
    SERVER_PROCESSES = _number("SERVER_PROCESSES", usable_cpus(), int)
    SERVER_THREADS = _number("SERVER_THREADS", "8", int)
    SERVER_CONNECTION_LIMIT = _number("SERVER_CONNECTION_LIMIT", "4000", int)
    SERVER_IDLE_TIMEOUT = _number("SERVER_IDLE_TIMEOUT", "30", int)
    # The dashboard's sign-in cookie (app.auth.signin): signed with SECRET_KEY (unset: a random key
    # kept in the instance folder; several hosts need one shared value), never sent with
    # another site's POST, and with SESSION_COOKIE_SECURE=1 (behind HTTPS) never over HTTP.
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0").lower() in (
        "1", "true", "yes")
    # Hours a dashboard sign-in lasts (the server forgets it then, or at sign-out).
    SESSION_HOURS = _number("SESSION_HOURS", "12", float)
    # The address clients reach the service at, such as https://monitor.example.com: links
    # in answers (download_url, the OpenAPI servers) start with it. Unset: links are built
    # from the request's Host, which TRUSTED_HOSTS (comma-separated names) then bounds.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "").rstrip("/")
    TRUSTED_HOSTS = [h.strip() for h in os.environ.get("TRUSTED_HOSTS", "").split(",")
                     if h.strip()] or None
    # run.py refuses to listen beyond loopback while no API key is active, unless this is 1.
    ALLOW_OPEN = os.environ.get("ALLOW_OPEN", "0").lower() in ("1", "true", "yes")
    # Rate limits (Flask-Limiter syntax, e.g. "30 per minute"; "" = none), per API key or
    # address; counters in memory, or shared when RATELIMIT_STORAGE_URI is redis://...
    TRIGGER_RATE_LIMIT = os.environ.get("TRIGGER_RATE_LIMIT", "30 per minute")
    REQUEST_RATE_LIMIT = os.environ.get("REQUEST_RATE_LIMIT", "")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    # A trigger beyond this many queued (unclaimed) reports is refused with 429.
    MAX_QUEUED_REPORTS = _number("MAX_QUEUED_REPORTS", "50", int)
    # How many proxies in front set X-Forwarded-For (1 behind deploy/nginx.conf); 0: none.
    TRUSTED_PROXIES = _number("TRUSTED_PROXIES", "0", int)
    # Which finished reports keep their CSV: "" all, "100" the newest 100 reports, "7d" those
    # of the last 7 days ("12h": hours). Older ones are emptied by the heartbeat; 410 after.
    REPORT_RETENTION = os.environ.get("REPORT_RETENTION", "")
    # How long a process keeps a finished report's state for polls (app.reports.state): a report
    # that another process's retention expired answers 410 here at most this late.
    FINISHED_STATE_SECONDS = _number("FINISHED_STATE_SECONDS", "2", float)
    REPORT_WORKERS = _number("REPORT_WORKERS", "2", int)
    # A Running report whose heartbeat is older than this is taken as interrupted.
    STALE_REPORT_SECONDS = _number("STALE_REPORT_SECONDS", "120", float)
    HEARTBEAT_SECONDS = _number("HEARTBEAT_SECONDS", "5", float)
    # How long a finished report's thread retries recording Complete or Error through a
    # database outage; after that its lease expires and the report ends in Error.
    FINAL_WRITE_SECONDS = _number("FINAL_WRITE_SECONDS", "60", float)
    # A poll later than the server's clock plus this many minutes is a rejected row.
    MAX_FUTURE_MINUTES = _number("MAX_FUTURE_MINUTES", "60", float)
    # Ingest refuses a file with a line longer than this (bytes), before reading it whole.
    MAX_LINE_BYTES = _number("MAX_LINE_BYTES", 1 << 20, int)
    # Where reports keep the columnar copy of the current data (None: the instance folder's
    # snapshot-copies; "": keep none, always read the database).
    SNAPSHOT_COPY_DIR = os.environ.get("SNAPSHOT_COPY_DIR")
    # Bounded waits on the database (seconds): see `app.storage.database.engine_options`. A request
    # that needs the database while it is unavailable answers 503 with this Retry-After.
    DATABASE_CONNECT_TIMEOUT = _number("DATABASE_CONNECT_TIMEOUT", "5", float)
    DATABASE_STATEMENT_TIMEOUT = _number("DATABASE_STATEMENT_TIMEOUT", "30", float)
    DATABASE_POOL_TIMEOUT = _number("DATABASE_POOL_TIMEOUT", "5", float)
    SQLITE_BUSY_TIMEOUT = _number("SQLITE_BUSY_TIMEOUT", "5", float)
    READY_TIMEOUT = _number("READY_TIMEOUT", "2", float)  # /readyz's database check
    RETRY_AFTER_SECONDS = _number("RETRY_AFTER_SECONDS", "5", int)
    # HTTP uploads (POST /api/v1/ingest): a larger body is refused with 413.
    MAX_UPLOAD_MB = _number("MAX_UPLOAD_MB", "200", float)
    # Any zip archive (upload, STORE_DATA, flask ingest), checked before it is read: total
    # uncompressed size, compression ratio of each member over 1 MB, number of members.
    ZIP_MAX_UNCOMPRESSED_MB = _number("ZIP_MAX_UNCOMPRESSED_MB", "4096", float)
    ZIP_MAX_RATIO = _number("ZIP_MAX_RATIO", "100", float)
    ZIP_MAX_MEMBERS = _number("ZIP_MAX_MEMBERS", "1000", int)
    # Threads computing one report's chunks of stores at once (default: one per CPU).
    ENGINE_THREADS = _number("ENGINE_THREADS", usable_cpus(), int)
    # A trigger when nothing was ingested since a Complete report gets that report's CSV
    # (0: compute every report, as `python -m bench.report --cold` measures).
    REUSE_REPORTS = os.environ.get("REUSE_REPORTS", "1").lower() in ("1", "true", "yes")
    # Live state (app.live): a store open now without a poll for this long is "silent";
    # incidents that ended more than INCIDENT_DAYS before the latest poll are dropped.
    SILENT_AFTER_MINUTES = _number("SILENT_AFTER_MINUTES", "120", float)
    INCIDENT_DAYS = _number("INCIDENT_DAYS", "35", float)
    # Webhooks: the first retry's wait (doubling after each failure, for up to a day), and
    # whether URLs on loopback, private or link-local addresses are allowed (tests).
    WEBHOOK_RETRY_SECONDS = _number("WEBHOOK_RETRY_SECONDS", "5", float)
    WEBHOOK_ALLOW_PRIVATE = os.environ.get("WEBHOOK_ALLOW_PRIVATE", "0").lower() in (
        "1", "true", "yes")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    # Logs go to standard error, so that `flask report --out -` writes only CSV to stdout;
    # LOG_TO_STDOUT=1 sends them to standard output, LOG_FILE to a file instead.
    LOG_TO_STDOUT = os.environ.get("LOG_TO_STDOUT", "0").lower() in ("1", "true", "yes")
    LOG_FILE = os.environ.get("LOG_FILE", "")
    # Reports on a Dask cluster (README, "Past one machine"): the scheduler's address, such
    # as tcp://10.0.0.5:8786; empty computes reports in this process.
    DASK_SCHEDULER = os.environ.get("DASK_SCHEDULER", "")
    # The most polls one task reads (a store with more gets a task of its own).
    DASK_MAX_POLLS_PER_TASK = _number("DASK_MAX_POLLS_PER_TASK", "2000000", int)
    DASK_CONNECT_TIMEOUT_SECONDS = _number("DASK_CONNECT_TIMEOUT_SECONDS", "5", float)
    # A report whose tasks have not all finished after this long ends in Error.
    DASK_REPORT_TIMEOUT_SECONDS = _number("DASK_REPORT_TIMEOUT_SECONDS", "1800", float)
