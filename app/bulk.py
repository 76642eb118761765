"""Bulk statements for ingest: many rows per call, no ORM object per row.

SQLite gets `executemany` of `INSERT ... ON CONFLICT` (it runs in-process, so that is its
fast path). PostgreSQL gets `COPY` into a temporary table and one set-based
`INSERT ... SELECT ... ON CONFLICT`: a round trip per statement, not per row.
"""

import io
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from .extensions import db

CHUNK_ROWS = 200_000
# Any constant works: it only has to be the same for every process of this service.
_INGEST_LOCK_KEY = 0x53544F5245  # "STORE"


@contextmanager
def writing_transaction():
    """A transaction that holds the database's write lock for ingest from its first statement.

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


def _is_postgresql(conn):
    return conn.dialect.name == "postgresql"


def _marks(conn, count):
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return "(" + ", ".join([mark] * count) + ")"


def _executemany(conn, sql, columns, progress=None):
    """SQLite: run `sql` once per row, in chunks of plain Python tuples."""
    total = len(columns[0]) if columns else 0
    for start in range(0, total, CHUNK_ROWS):
        rows = list(zip(*(np.asarray(c)[start:start + CHUNK_ROWS].tolist() for c in columns)))
        conn.exec_driver_sql(sql, rows)
        if progress:
            progress(min(1.0, (start + CHUNK_ROWS) / total))


def _copy(conn, table, names, columns, progress=None):
    """PostgreSQL: COPY the rows into `table`, as CSV that Arrow writes."""
    total = len(columns[0])
    with conn.connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)") as copy:
        for start in range(0, total, CHUNK_ROWS):
            part = pa.table({name: pa.array(np.asarray(column)[start:start + CHUNK_ROWS])
                             for name, column in zip(names, columns)})
            buffer = io.BytesIO()
            # Quoting every value keeps an empty string apart from NULL.
            pacsv.write_csv(part, buffer, pacsv.WriteOptions(include_header=False,
                                                             quoting_style="all_valid"))
            copy.write(buffer.getvalue())
            if progress:
                progress(min(1.0, (start + CHUNK_ROWS) / total))


def _upsert(conn, table, names, columns, key, update=(), progress=None):
    """Insert rows; where `key` already exists, overwrite the `update` columns (or skip)."""
    if len(columns[0]) == 0:
        return
    action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)
              if update else "DO NOTHING")
    listed = ", ".join(names)
    on_conflict = f"ON CONFLICT ({', '.join(key)}) {action}"
    if _is_postgresql(conn):
        conn.exec_driver_sql("DROP TABLE IF EXISTS pg_temp.staging")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE staging ON COMMIT DROP AS "
                             f"SELECT {listed} FROM {table} WITH NO DATA")
        _copy(conn, "staging", names, columns, progress)
        conn.exec_driver_sql(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM staging "
                             f"{on_conflict}")
    else:
        _executemany(conn, f"INSERT INTO {table} ({listed}) VALUES "
                           f"{_marks(conn, len(names))} {on_conflict}", columns, progress)


def insert_rows(conn, table, names, columns):
    """Insert the rows given as parallel columns into `table` (a table name)."""
    if len(columns[0]) == 0:
        return
    if _is_postgresql(conn):
        _copy(conn, table, names, columns)
    else:
        _executemany(conn, f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                           f"{_marks(conn, len(names))}", columns)


def store_pks(conn, store_ids, known=None):
    """Map store ids to `store.id`, registering the ids not seen before.

    `known` is the Series this function returned before in the same transaction, if any;
    the table is read again only when ids are new. Returns a Series of primary keys indexed
    by store id.
    """
    def read_all():
        rows = conn.execute(sa.text("SELECT store_id, id FROM store")).all()
        return pd.Series([r[1] for r in rows], index=pd.Index([r[0] for r in rows], dtype=object),
                         dtype=np.int64)

    pks = read_all() if known is None else known
    new = pd.Index(store_ids, dtype=object).difference(pks.index)
    if len(new):
        _upsert(conn, "store", ["store_id"], [new.to_numpy()], key=["store_id"])
        pks = read_all()
    return pks


def count_rows(conn, table):
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def upsert_status(conn, store_pk, timestamp_us, active):
    """Insert polls, overwriting the status of a store and instant already present."""
    _upsert(conn, "store_status", ["store_pk", "timestamp_us", "active"],
            [store_pk, timestamp_us, active], key=["store_pk", "timestamp_us"],
            update=["active"])


def replace_hours(conn, named_pks, columns):
    """Drop the hours of the stores in `named_pks`, then insert the given rows."""
    if _is_postgresql(conn):
        conn.exec_driver_sql("DELETE FROM business_hours WHERE store_pk = ANY(%s)",
                             (np.asarray(named_pks).tolist(),))
    else:
        _executemany(conn, "DELETE FROM business_hours WHERE store_pk = ?", [named_pks])
    insert_rows(conn, "business_hours",
                ["store_pk", "day_of_week", "start_local_s", "end_local_s"], columns)


def upsert_timezones(conn, store_pk, timezone_str):
    _upsert(conn, "store_timezone", ["store_pk", "timezone_str"], [store_pk, timezone_str],
            key=["store_pk"], update=["timezone_str"])
