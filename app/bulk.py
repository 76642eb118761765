"""Bulk statements for ingest: many rows per call, no ORM object per row.

The SQL here (`INSERT ... ON CONFLICT`) is understood by both SQLite and PostgreSQL; only the
parameter marker differs, and `_marks` picks it for the connection's driver.
"""

from contextlib import contextmanager

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .extensions import db

CHUNK_ROWS = 200_000
# Any constant works: it only has to be the same for every process of this service.
_INGEST_LOCK_KEY = 0x53544F5245  # "STORE"


@contextmanager
def writing_transaction():
    """A transaction that holds the database's write lock from its first statement.

    On SQLite, `BEGIN IMMEDIATE` avoids failing half-way when another writer appears; on
    PostgreSQL an advisory lock serialises ingests, so counts taken inside are exact.
    """
    engine = db.engine
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK_KEY})
        yield conn


def _marks(conn, count):
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return "(" + ", ".join([mark] * count) + ")"


def _tuples(columns, start=0, stop=None):
    """Rows as tuples of plain Python values, as DB-API drivers expect them."""
    return list(zip(*(np.asarray(c)[start:stop].tolist() for c in columns)))


def _executemany(conn, sql, columns, progress=None):
    total = len(columns[0]) if columns else 0
    for start in range(0, total, CHUNK_ROWS):
        conn.exec_driver_sql(sql, _tuples(columns, start, start + CHUNK_ROWS))
        if progress:
            progress(min(1.0, (start + CHUNK_ROWS) / total))


def insert_rows(conn, table, names, columns):
    """Insert the rows given as parallel columns into `table`."""
    if len(columns[0]) == 0:
        return
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {_marks(conn, len(names))}"
    _executemany(conn, sql, columns)


def store_pks(conn, store_ids):
    """Map store ids to `store.id`, registering the ids not seen before.

    Returns a Series of primary keys indexed by store id.
    """
    def known():
        rows = conn.execute(sa.text("SELECT store_id, id FROM store")).all()
        return pd.Series([r[1] for r in rows], index=pd.Index([r[0] for r in rows], dtype=object),
                         dtype=np.int64)

    pks = known()
    new = pd.Index(store_ids, dtype=object).difference(pks.index)
    if len(new):
        _executemany(conn, f"INSERT INTO store (store_id) VALUES {_marks(conn, 1)} "
                           "ON CONFLICT (store_id) DO NOTHING", [new.to_numpy()])
        pks = known()
    return pks


def _count(conn, table):
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def upsert_status(conn, store_pk, timestamp_us, active, progress=None):
    """Insert polls, overwriting the status of a store and instant already present.

    Returns how many rows were new. The count is exact because the caller holds the write lock.
    """
    before = _count(conn, "store_status")
    _executemany(conn, "INSERT INTO store_status (store_pk, timestamp_us, active) VALUES "
                       f"{_marks(conn, 3)} ON CONFLICT (store_pk, timestamp_us) "
                       "DO UPDATE SET active = excluded.active",
                 [store_pk, timestamp_us, active], progress)
    return _count(conn, "store_status") - before


def replace_hours(conn, named_pks, columns):
    """Drop the hours of the stores in `named_pks`, then insert the given rows."""
    _executemany(conn, f"DELETE FROM business_hours WHERE store_pk = {_marks(conn, 1)[1:-1]}",
                 [named_pks])
    insert_rows(conn, sa.table("business_hours"),
                ["store_pk", "day_of_week", "start_local_s", "end_local_s"], columns)


def upsert_timezones(conn, store_pk, timezone_str):
    _executemany(conn, "INSERT INTO store_timezone (store_pk, timezone_str) VALUES "
                       f"{_marks(conn, 2)} ON CONFLICT (store_pk) "
                       "DO UPDATE SET timezone_str = excluded.timezone_str",
                 [store_pk, timezone_str])
