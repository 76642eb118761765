"""Alembic environment: migrate the database of the current Flask app, one process at a time.

Several processes may start together (gunicorn workers) and all try to upgrade. On
PostgreSQL an advisory lock held by the migration transaction serialises them; on SQLite
`BEGIN IMMEDIATE` takes the write lock before the version table is read. The second process
then finds the schema current and does nothing.
"""

import sqlalchemy as sa
from alembic import context
from flask import current_app

from app.database import SQLITE_WRITER_WAIT_SECONDS, schema_engines

_MIGRATION_LOCK_KEY = 0x4D49475241  # any constant shared by all processes ("MIGRA")


def run_migrations_online():
    """Every database of the app: the data, and on SQLite the report queue's own file
    (which has the same schema; only its `report` table is used)."""
    db = current_app.extensions["migrate"].db
    metadata = [db.metadatas[key] for key in db.metadatas]
    for engine in schema_engines():
        _migrate(engine, metadata)


def _migrate(engine, metadata):
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE",
                                          sqlite_busy_timeout=SQLITE_WRITER_WAIT_SECONDS)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": _MIGRATION_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
