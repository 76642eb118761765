"""Bind the database to an app: connection settings per dialect, and the schema."""

import logging

import flask_migrate
import sqlalchemy as sa
from flask import Flask

from .config import PROJECT_DIR
from .extensions import db, migrate

MIGRATIONS_DIR = PROJECT_DIR / "migrations"


def init_app(app: Flask):
    """Bind `db`, tune SQLite connections and bring the schema to the latest migration."""
    if app.config.get("SQLALCHEMY_DATABASE_URI") is None:
        app.config["SQLALCHEMY_DATABASE_URI"] = (
            f"sqlite:///{app.instance_path}/store-monitor.sqlite3")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("connect_args", {"timeout": 60})
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _tune_sqlite(db.engine)
        _upgrade_schema()


def _upgrade_schema():
    """Apply the migrations the database lacks (every table, on a fresh database)."""
    # Alembic announces every context it opens at INFO; that is noise at each start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))


def _tune_sqlite(engine):
    """WAL lets reports read while an ingest writes; explicit BEGIN makes reads consistent.

    pysqlite by default opens a transaction only before a write, so two SELECTs of one
    report could see different data. Following SQLAlchemy's pysqlite notes, the driver's own
    transaction handling is switched off and every transaction starts with our BEGIN
    (`BEGIN IMMEDIATE` when a writer asks for it with ``sqlite_begin``).
    """
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-200000")  # 200 MB of page cache
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", ""))
