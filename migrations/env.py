"""Alembic environment: migrate the database of the current Flask app, one process at a time.

Several processes may upgrade at once (say, servers started together). Each migration
transaction takes the database's write lock as it begins (SQLite) and a lock of its own
(PostgreSQL), before the version table is read (see `app.storage.database.write_locking` and
`hold_lock`). The second process then finds the schema current and does nothing.
"""

from alembic import context
from flask import current_app

from app.storage.database import (
    SQLITE_WRITER_WAIT_SECONDS,
    hold_lock,
    is_sqlite,
    schema_engines,
    write_locking,
)

_MIGRATION_LOCK_KEY = 0x4D494752  # any int32 shared by all processes ("MIGR")


def run_migrations_online():
    """Every database of the app: the data, and on SQLite the report queue's own file
    (which has the same schema; only its `report` table is used)."""
    db = current_app.extensions["migrate"].db
    metadata = [db.metadatas[key] for key in db.metadatas]
    for engine in schema_engines():
        _migrate(engine, metadata)


def _migrate(engine, metadata):
    with write_locking(engine, SQLITE_WRITER_WAIT_SECONDS).connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=is_sqlite(connection), compare_type=True)
        with context.begin_transaction():
            hold_lock(connection, _MIGRATION_LOCK_KEY)
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
