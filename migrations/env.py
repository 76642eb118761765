"""Alembic environment: migrate the database of the current Flask app, one process at a time.

Several processes may upgrade at once (say, servers started together). Each migration
transaction takes the database's write lock as it begins (SQLite) and a lock of its own
(PostgreSQL), before the version table is read (see `app.storage.database.write_locking` and
`hold_lock`). The second process then finds the schema current and does nothing.
"""

import logging
import sys

from alembic import context
from flask import current_app
from sqlalchemy.exc import DBAPIError

from app.storage.database import (
    SQLITE_WRITER_WAIT_SECONDS,
    hold_lock,
    is_sqlite,
    schema_engines,
    write_locking,
)
from app.storage.outage import unusable_database

_MIGRATION_LOCK_KEY = 0x4D494752  # any int32 shared by all processes ("MIGR")

# `flask db upgrade` by hand says what it did ("Running upgrade a -> b, ..."), and where the
# schema ends; the serving start-ups (`app.storage.database.upgrade`) set Alembic's logger
# to WARNING first and stay quiet.
_log = logging.getLogger("alembic")
_BY_HAND = _log.level == logging.NOTSET and all(
    isinstance(handler, logging.NullHandler) for handler in _log.handlers)
if _BY_HAND:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    # Alembic's notes on its own set-up are not news to an operator.
    _handler.addFilter(lambda record: not record.getMessage().startswith(
        ("Context impl", "Will assume")))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)


def run_migrations_online():
    """Every database of the app: the data, and on SQLite the report queue's own file
    (which has the same schema; only its `report` table is used). By hand (`flask db
    upgrade`), a database that cannot be used is one line and exit status 1."""
    db = current_app.extensions["migrate"].db
    metadata = [db.metadatas[key] for key in db.metadatas]
    for engine in schema_engines():
        try:
            _migrate(engine, metadata)
        except DBAPIError as exc:
            if not _BY_HAND:
                raise  # a server's start-up says it its own way (app.ops.startup)
            raise SystemExit(unusable_database(exc, engine.url)) from None


def _migrate(engine, metadata):
    with write_locking(engine, SQLITE_WRITER_WAIT_SECONDS).connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=is_sqlite(connection), compare_type=True)
        with context.begin_transaction():
            hold_lock(connection, _MIGRATION_LOCK_KEY)
            context.run_migrations()
        if _BY_HAND:
            heads = context.get_context().get_current_heads()
            _log.info("%s: schema at revision %s", engine.url.render_as_string(
                hide_password=True), ", ".join(heads) or "(none)")


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
