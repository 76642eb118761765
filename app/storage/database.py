"""Bind the database to an app, upgrade its schema, and answer every dialect question.

Binding never touches the schema: `upgrade` is a step of its own, taken by whatever starts
serving (`run.py`, gunicorn's master through `gunicorn.conf.py`) and by the CLI commands that
read or write tables, but not by `flask db ...`, which must see the schema as it is.

What differs between SQLite and PostgreSQL in transactions, locks and SQL is decided here
(`write_locking`, `hold_lock`, `lift_statement_timeout`, `seconds_between`, `text_before`).
The two bulk paths are the exception, on purpose: moving millions of rows is done with each
database's own fast tool (COPY and ADBC for PostgreSQL, a staged file and `group_concat` for
SQLite), chosen with `is_postgresql` in `bulk.py` (ingest) and `snapshot.py` (reading the
data); another database needs this file and those two loaders.
"""

import contextlib
import functools
import logging
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: one process serves there (see `one_process_at_a_time`)
    fcntl = None

import flask_migrate
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.compiler import compiles

from app.config import PROJECT_DIR
from app.extensions import db, migrate
from app.storage.outage import OutageLog, watch

MIGRATIONS_DIR = PROJECT_DIR / "migrations"
# How long ingest and migrations wait for SQLite's write lock (execution option
# `sqlite_busy_timeout`): they may queue behind another process's ingest of millions of rows,
# where a request gives up after SQLITE_BUSY_TIMEOUT.
SQLITE_WRITER_WAIT_SECONDS = 300


def init_app(app: Flask):
    """Bind `db` (and the report queue) and tune SQLite connections."""
    if app.config.get("SQLALCHEMY_DATABASE_URI") is None:
        app.config["SQLALCHEMY_DATABASE_URI"] = (
            f"sqlite:///{app.instance_path}/store-monitor.sqlite3")
    options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    for key, value in engine_options(app.config).items():
        options.setdefault(key, value)
    queue = app.config.get("QUEUE_DATABASE_URL") or queue_url(
        app.config["SQLALCHEMY_DATABASE_URI"])
    # Flask-SQLAlchemy gives a bind only the options given with it.
    app.config.setdefault("SQLALCHEMY_BINDS", {}).setdefault("queue", {"url": queue, **options})
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    app.extensions["database_outages"] = outages = OutageLog(app.config["DATABASE_CONNECT_TIMEOUT"])
    with app.app_context():
        engines = db.engines
        if engines["queue"].url == engines[None].url:
            # One database (PostgreSQL): one pool, not two. The queue's engine never
            # connected, so nothing is lost in replacing it.
            engines["queue"].dispose()
            engines["queue"] = engines[None]
        for engine in {id(e): e for e in engines.values()}.values():
            if is_sqlite(engine):
                _tune_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT"])
            watch(engine, outages)


def queue_url(database_url):
    """Where the report queue (the `report` table) lives by default: on SQLite, a file of its
    own beside the data file (``store-monitor.sqlite3`` -> ``store-monitor-queue.sqlite3``);
    elsewhere, the same database.

    SQLite has one write lock per file, and an ingest holds the data file's for its whole
    transaction. With the queue elsewhere, triggers, claims and progress never wait for it,
    while reports still read the data through WAL. `QUEUE_DATABASE_URL` overrides this (the
    data file's own URL keeps one file). Both files get the same migrations
    (`schema_engines`), run once before serving starts (`upgrade`).
    """
    url = make_url(database_url)
    path = sqlite_file(url)
    if path is None or (url.database or "").startswith("file:"):  # a URI: name it yourself
        return database_url
    queue = path.with_name(f"{path.stem}-queue{path.suffix}")
    return url.set(database=str(queue)).render_as_string(hide_password=False)


def read_apart(engine=None):
    """A connection of its own (of `engine`, else the data's) for a read made by a request
    that may write afterwards.

    On SQLite a transaction that has read cannot always write later: when another writer
    committed in between, upgrading its read lock to a write lock fails at once ("database is
    locked") instead of waiting. So such reads never run in the request's session.
    """
    return (engine or db.engine).connect()


def queue_engine():
    """The engine of the report queue (see `queue_url`)."""
    return db.engines["queue"]


def schema_engines():
    """Every distinct database whose schema the migrations keep (data and queue)."""
    engines = {}
    for engine in (db.engine, queue_engine()):
        engines.setdefault(engine.url.render_as_string(hide_password=False), engine)
    return list(engines.values())


def engine_options(config):
    """Bounded waits everywhere, so that an unreachable database costs seconds, not forever.

    Server connections are tested before use (`pool_pre_ping`: after a blip the first request
    would otherwise get a dead connection), waiting for a free one is bounded (`pool_timeout`), and
    so are connecting and each statement: on PostgreSQL `connect_timeout` and the server's
    `statement_timeout`, plus `tcp_user_timeout` and keepalives for a network that silently
    drops packets; on SQLite the wait for another writer's lock (busy timeout). PostgreSQL's
    JIT compiler is off (its compile time exceeds what it saves on the service's queries).
    """
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if is_sqlite(url):
        # A file has no connection to lose: a ping before each use would only cost time.
        return {"connect_args": {"timeout": config["SQLITE_BUSY_TIMEOUT"]}}
    options = {"pool_pre_ping": True}
    options["pool_timeout"] = config["DATABASE_POOL_TIMEOUT"]
    statement_ms = round(config["DATABASE_STATEMENT_TIMEOUT"] * 1000)
    # Options given in the URL (say, a search_path) are kept: connect_args would replace them.
    # JIT off unless the URL says otherwise: the service's statements are lookups and pages,
    # which the estimates of tables of millions of rows sent to the JIT compiler (0.5 s
    # compiling the home page's query at a million stores, executed in 30 ms).
    server_options = (f"-c jit=off {url.query.get('options', '')} "
                      f"-c statement_timeout={statement_ms}")
    options["connect_args"] = {
        "connect_timeout": max(2, round(config["DATABASE_CONNECT_TIMEOUT"])),  # libpq: >= 2
        "options": server_options.strip(),
        "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": round(config["DATABASE_CONNECT_TIMEOUT"] * 1000),
    }
    return options


def is_postgresql(bind):
    """True for PostgreSQL; `bind` is an engine, a connection, a URL or its text."""
    return _backend(bind) == "postgresql"


def is_sqlite(bind):
    """True for SQLite; `bind` is an engine, a connection, a URL or its text."""
    return _backend(bind) == "sqlite"


def _backend(bind):
    if isinstance(bind, (str, URL)):
        return make_url(bind).get_backend_name()
    return bind.dialect.name


def write_locking(engine, wait_seconds=None):
    """`engine`, made to take the database's write lock as each transaction begins.

    SQLite has one writer per file: `BEGIN IMMEDIATE` takes its lock before the first read,
    so a transaction never fails half-way when another writer appears (it waits up to
    `wait_seconds`, else the app's busy timeout). PostgreSQL locks rows as they are written;
    for one transaction at a time, see `hold_lock`.
    """
    if not is_sqlite(engine):
        return engine
    options = {"sqlite_begin": "IMMEDIATE"}
    if wait_seconds is not None:
        options["sqlite_busy_timeout"] = wait_seconds
    return engine.execution_options(**options)


def hold_lock(conn, key, wait=True):
    """Serialise transactions that name the same `key` (an int32) in this schema.

    PostgreSQL: a transaction-scoped advisory lock per schema (advisory locks are
    database-wide, and tests or services may share a database); with `wait` false, False at
    once when another transaction holds it. SQLite: True, since a transaction begun by
    `write_locking` holds the file's only write lock already.
    """
    if not is_postgresql(conn):
        return True
    name = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    held = conn.execute(sa.text(f"SELECT {name}(:key, hashtext(current_schema()))"),
                        {"key": key}).scalar()
    return wait or bool(held)


@contextlib.contextmanager
def one_process_at_a_time(engine, name, wait_seconds=SQLITE_WRITER_WAIT_SECONDS):
    """On a SQLite file, hold a lock file beside it (`<file>-<name>.lock`, `flock`) for the
    block: one process (or thread) at a time, across processes, which SQLite's write lock
    gives only by making the second writer wait. Yields False, holding nothing, when another
    still holds it after `wait_seconds` (0: at once), as SQLite's own wait would give up;
    True otherwise. PostgreSQL (see `hold_lock`) and in-memory SQLite need no file: True.

    The kernel drops the lock of a process that dies, so a crash never leaves it held.
    """
    path = sqlite_file(engine.url)
    if path is None or fcntl is None:
        yield True
        return
    with open(f"{path}-{name}.lock", "a") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_file(url):
    """The file of a SQLite database URL (a path, or a `file:` URI's path); None for other
    databases and in-memory ones."""
    url = make_url(url)
    name = url.database or ""
    if url.get_backend_name() != "sqlite" or url.query.get("mode") == "memory":
        return None
    if name.startswith("file:"):
        name = name[len("file:"):].split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name)


def lift_statement_timeout(conn):
    """Let this transaction's statements run as long as they need (bulk work), past the
    statement timeout that bounds requests (PostgreSQL; SQLite has none)."""
    if is_postgresql(conn):
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")


class seconds_between(sa.sql.functions.GenericFunction):
    """SQL: the seconds from instant `start` to instant `end` (two DateTime expressions)."""

    type = sa.Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_between(element, compiler, **kw):
    start, end = element.clauses
    return compiler.process(sa.extract("epoch", end - start), **kw)


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element, compiler, **kw):
    start, end = element.clauses
    return compiler.process((sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0,
                            **kw)


class text_before(sa.sql.functions.GenericFunction):
    """SQL: the part of text `value` before the first `separator` (all of it when absent)."""

    type = sa.String()
    inherit_cache = True


# Constants are written as SQL literals, not parameters: an expression that is also grouped
# by must render the same text each time, or PostgreSQL refuses the GROUP BY.
_ONE, _ZERO = sa.literal_column("1"), sa.literal_column("0")


@compiles(text_before)
def _text_before(element, compiler, **kw):
    value, separator = element.clauses
    return compiler.process(sa.func.split_part(value, separator, _ONE), **kw)


@compiles(text_before, "sqlite")
def _text_before_sqlite(element, compiler, **kw):
    value, separator = element.clauses
    cut = sa.func.instr(value, separator)
    return compiler.process(
        sa.case((cut > _ZERO, sa.func.substr(value, _ONE, cut - _ONE)), else_=value), **kw)


def upgrade(app):
    """Apply the migrations the app's databases lack (every table, on a fresh database).

    Safe when several processes do it at once (see migrations/env.py), but the serving
    start-ups do it once, before any worker starts.
    """
    # Alembic announces every context it opens at INFO; that is noise at each start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))


def with_current_schema(command):
    """Make a CLI command run in an app context, on a schema upgraded first."""
    @functools.wraps(command)
    @with_appcontext
    def upgraded_first(*args, **kwargs):
        upgrade(current_app)
        return command(*args, **kwargs)
    return upgraded_first


# SQLite's page cache per connection, in KiB: reads keep a large one. A writer keeps a small
# one: its inserts follow the key (an hour after another), so pages it no longer needs are
# written out early instead of being held to the commit (70 MB of an ingest's 536 MB peak
# at 2.5 M polls, at the same speed).
SQLITE_CACHE_KB = 200_000
SQLITE_WRITE_CACHE_KB = 20_000


def _tune_sqlite(engine, busy_timeout):
    """WAL lets reports read while an ingest writes; explicit BEGIN makes reads consistent.

    pysqlite by default opens a transaction only before a write, so two SELECTs of one
    report could see different data. Following SQLAlchemy's pysqlite notes, the driver's own
    transaction handling is switched off and every transaction starts with our BEGIN
    (`BEGIN IMMEDIATE` when a writer asks for it with ``sqlite_begin``), after setting how
    long it may wait for the lock (``sqlite_busy_timeout`` seconds, else `busy_timeout`).
    """
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        options = conn.get_execution_options()
        wait_ms = round(1000 * options.get("sqlite_busy_timeout", busy_timeout))
        info = conn.connection.info  # per DBAPI connection: set the wait only when it changes
        if info.get("busy_timeout_ms") != wait_ms:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")
            info["busy_timeout_ms"] = wait_ms
        conn.exec_driver_sql("BEGIN " + options.get("sqlite_begin", ""))
