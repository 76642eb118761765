"""Bulk statements for ingest: whole columns per statement, no Python object per row.

Rows go to the database as Arrow columns written in C, then one set-based statement
(`INSERT ... SELECT ... ON CONFLICT`) puts them in place:

- PostgreSQL: `COPY` (CSV that Arrow writes) into a temporary table, or straight into an
  empty polls table, where nothing can conflict.
- SQLite: the ADBC driver writes the columns into a private staging file, which the
  ingest's own connection attaches. `executemany` would build a Python tuple per row and
  bind it (about 1.5 µs a row: most of an ingest of millions of polls). The driver brings
  its own copy of the SQLite library, and two copies must never open the same file (each
  would drop the other's locks). They do not: the driver alone opens the staging file
  until it has closed it, then only the ingest connection does.
"""

import io
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager

import adbc_driver_sqlite.dbapi as adbc_sqlite
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from app.extensions import db
from app.storage.database import (
    SQLITE_CACHE_KB,
    SQLITE_WRITE_CACHE_KB,
    SQLITE_WRITER_WAIT_SECONDS,
    hold_lock,
    is_postgresql,
    is_sqlite,
    lift_statement_timeout,
    one_process_at_a_time,
    write_locking,
)
from app.storage.poll_order import Reordered, in_key_order

CHUNK_ROWS = 200_000
# SQLite: from this many rows on, a staging file written in C beats `executemany` (14,000
# rows: 10 ms against 30 ms); and at most this many files per transaction (SQLite
# attaches at most 10 databases).
STAGE_FILE_ROWS = 2_000
MAX_STAGING_FILES = 8
# SQLite: at least this many rows per part when polls are staged in parts (`_staged_parts`).
# Other tables take one file per statement and leave MAX_STAGE_PARTS files to the polls
# (`_files_for`): a large ingest's hours, zones, stores and rejected rows never push the
# polls to `executemany`.
STAGE_PART_ROWS = 400_000
MAX_STAGE_PARTS = 4
# Polls whose duplicates are counted by looking up their keys; beyond, by counting the
# table before and after (two scans of it beat millions of lookups).
LOOKUP_ROWS = 200_000
# PostgreSQL: the memory a first load's key build may sort in.
KEY_BUILD_MEMORY = "256MB"
# Any constant works: it only has to be the same for every process of this service (the
# lock is per schema: see `database.hold_lock`).
_INGEST_LOCK_KEY = 0x53544F52  # "STOR"


class IngestBusy(Exception):
    """Another ingest holds the lock (raised only when asked not to wait for it)."""


@contextmanager
def writing_transaction(wait=True):
    """A transaction that holds the database's write lock for ingest from its first statement.

    On SQLite, `BEGIN IMMEDIATE` avoids failing half-way when another writer appears; on
    PostgreSQL an advisory lock serialises ingests, so counts taken inside are exact. With
    `wait` false, `IngestBusy` is raised instead of waiting for another ingest: PostgreSQL's
    lock, or on a SQLite file a lock file every ingest holds (`run.py`'s processes share one
    file, and its write lock would only make the second ingest wait).
    """
    engine = write_locking(db.engine, SQLITE_WRITER_WAIT_SECONDS)
    with one_process_at_a_time(engine, "ingest", SQLITE_WRITER_WAIT_SECONDS if wait else 0) \
            as alone, engine.connect() as conn:
        if not alone:
            raise IngestBusy("another ingest is running")
        try:
            with conn.begin():
                # A big ingest's statements (and the wait for another ingest) may take
                # longer than the statement timeout that bounds requests.
                lift_statement_timeout(conn)
                if not hold_lock(conn, _INGEST_LOCK_KEY, wait):
                    raise IngestBusy("another ingest is running")
                if is_sqlite(conn):
                    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_WRITE_CACHE_KB}")
                yield conn
        finally:
            # SQLite only lets go of an attached file once the transaction is over; the
            # driver's own connection runs it, outside any transaction.
            if is_sqlite(conn):
                raw = conn.connection.dbapi_connection
                raw.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
                for row in raw.execute("PRAGMA database_list").fetchall():
                    if row[1].startswith(_STAGING):
                        raw.execute(f"DETACH DATABASE {row[1]}")


# Tables whose rows COPY sends in PostgreSQL's binary format: each column's type as numpy
# writes it (big-endian, the width of the column's SQL type).
_BINARY_COLUMNS = {"store_status": {"hour": ">i4", "store_pk": ">i4", "timestamp_us": ">i8",
                                     "active": "?"},
                   "business_hours": {"store_pk": ">i4", "day_of_week": ">i2",
                                      "start_local_s": ">i4", "end_local_s": ">i4"}}
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_BINARY_TRAILER = b"\xff\xff"


def _copy(conn, table, names, columns, like_table=None):
    """PostgreSQL: COPY the rows into `table` (whose columns are typed as in `like_table`),
    in binary when `_BINARY_COLUMNS` knows the columns' types, else as CSV that Arrow
    writes."""
    types = _BINARY_COLUMNS.get(like_table or table)
    if types is not None and set(names) <= set(types):
        return _copy_binary(conn, table, names, columns, [types[name] for name in names])
    total = len(columns[0])
    with conn.connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)") as copy:
        for start in range(0, total, CHUNK_ROWS):
            part = pa.table({name: pa.array(_rows(column, start, start + CHUNK_ROWS))
                             for name, column in zip(names, columns)})
            buffer = io.BytesIO()
            # Quoting every value keeps an empty string apart from NULL.
            pacsv.write_csv(part, buffer, pacsv.WriteOptions(include_header=False,
                                                             quoting_style="all_valid"))
            copy.write(buffer.getvalue())


def _copy_binary(conn, table, names, columns, types):
    """COPY in the binary format, each block of rows one numpy record array (a field
    count, then each value behind its length): nothing is written or parsed as text, which
    was most of the server's work for millions of polls."""
    fields = [("count", ">i2")]
    for index, kind in enumerate(types):
        fields += [(f"length{index}", ">i4"), (f"value{index}", kind)]
    record = np.dtype(fields)
    total = len(columns[0])
    with conn.connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)") as copy:
        copy.write(_BINARY_HEADER)
        for start in range(0, total, CHUNK_ROWS):
            rows = np.empty(min(CHUNK_ROWS, total - start), dtype=record)
            rows["count"] = len(types)
            for index, (kind, column) in enumerate(zip(types, columns)):
                rows[f"length{index}"] = np.dtype(kind).itemsize
                rows[f"value{index}"] = _rows(column, start, start + len(rows))
            copy.write(rows.tobytes())
        copy.write(_BINARY_TRAILER)


def _rows(column, low, high):
    """Rows ``low .. high - 1`` of a column: a numpy array, a sequence, or a
    `poll_order.Reordered` (which then takes only these rows into memory)."""
    if isinstance(column, Reordered):
        return column[low:high]
    return np.asarray(column)[low:high]


def _staged(conn, like_table, names, columns):
    """Put the rows somewhere one SQL statement of `conn` can select them from; returns
    that table's name. Its columns are `names`, typed as in `like_table`."""
    if is_postgresql(conn):
        conn.exec_driver_sql("DROP TABLE IF EXISTS pg_temp.staging")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE staging ON COMMIT DROP AS "
                             f"SELECT {', '.join(names)} FROM {like_table} WITH NO DATA")
        _copy(conn, "staging", names, columns, like_table)
        return "staging"
    attached = sorted(n for n in _attached(conn) if n.startswith(_STAGING))
    if len(columns[0]) < STAGE_FILE_ROWS or len(attached) >= _files_for(like_table):
        return _staged_by_executemany(conn, names, columns)
    # One file per call: an attached file stays attached until the transaction ends.
    alias = f"{_STAGING}{len(attached)}"
    with tempfile.TemporaryDirectory(prefix="store-monitor-ingest-") as folder:
        path = _staging_file(os.path.join(folder, "rows.sqlite3"), names, columns)
        # Still readable once its folder is gone: the connection keeps the file open.
        conn.exec_driver_sql(f"ATTACH DATABASE ? AS {alias}", (path,))
    return f"{alias}.rows"


def _staged_parts(conn, like_table, names, columns):
    """Like `_staged`, but yields the rows as consecutive parts, each once it can be
    selected from.

    On SQLite, many rows go in up to MAX_STAGE_PARTS files: a thread writes the next
    part's file (in the driver's C code, without the GIL) while `conn` copies the part
    before into its table (in SQLite's C code, also without the GIL), so the two steps
    overlap on two cores instead of following each other. The driver is done with a file
    before `conn` attaches it.
    """
    total = len(columns[0])
    attached = 0 if is_postgresql(conn) else len(
        [n for n in _attached(conn) if n.startswith(_STAGING)])
    most = MAX_STAGE_PARTS if like_table == "store_status" else 1
    parts = min(most, total // STAGE_PART_ROWS, _files_for(like_table) - attached)
    if is_postgresql(conn) or parts < 2:
        yield _staged(conn, like_table, names, columns)
        return
    bounds = np.linspace(0, total, parts + 1).astype(np.int64)
    with tempfile.TemporaryDirectory(prefix="store-monitor-ingest-") as folder, \
            ThreadPoolExecutor(1, thread_name_prefix="staging") as pool:
        # A part's rows are taken on the thread, when its turn comes: taken here, every
        # part would be in memory at once (3.8 GB more at 182 M polls).
        files = [pool.submit(_staging_file, os.path.join(folder, f"rows{part}.sqlite3"), names,
                             columns, (low, high))
                 for part, (low, high) in enumerate(zip(bounds[:-1], bounds[1:]))]
        try:
            for part, file in enumerate(files):
                alias = f"{_STAGING}{attached + part}"
                conn.exec_driver_sql(f"ATTACH DATABASE ? AS {alias}", (file.result(),))
                yield f"{alias}.rows"
        finally:
            for file in files:
                file.cancel()


def _staging_file(path, names, columns, rows=None):
    """Write the rows (``(low, high)`` of `rows`, or all) into a new SQLite file at `path`
    (table `rows`) and close it."""
    if rows is not None:
        columns = [_rows(column, *rows) for column in columns]
    with closing(adbc_sqlite.connect(path, autocommit=True)) as staging, \
            closing(staging.cursor()) as cursor:
        # A throwaway file: no journal, no waiting for the disk.
        cursor.execute("PRAGMA journal_mode = OFF")
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.adbc_ingest("rows", pa.table({name: np.asarray(column)
                                             for name, column in zip(names, columns)}),
                           mode="create")
    return path


def _files_for(like_table):
    """How many staging files a transaction may have attached when rows of `like_table`
    take one more: all of them for the polls, the others leave MAX_STAGE_PARTS."""
    return MAX_STAGING_FILES - (0 if like_table == "store_status" else MAX_STAGE_PARTS)


def _staged_by_executemany(conn, names, columns):
    """SQLite: a temporary table filled row by row, for few rows (a file costs more), or
    when the transaction has no staging file left; CHUNK_ROWS rows at a time, so that
    Python holds a bounded number of row tuples whatever the size of the input."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS temp.staging")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE staging ({', '.join(names)})")
    insert = f"INSERT INTO temp.staging VALUES ({', '.join('?' * len(names))})"
    columns = [column if isinstance(column, Reordered) else np.asarray(column)
               for column in columns]
    total = len(columns[0])
    for start in range(0, total, CHUNK_ROWS):
        end = min(start + CHUNK_ROWS, total)
        conn.exec_driver_sql(insert, list(zip(*(_rows(column, start, end).tolist()
                                                for column in columns))))
    return "temp.staging"


_STAGING = "ingest_staging"


def _attached(conn):
    return {row[1] for row in conn.exec_driver_sql("PRAGMA database_list")}


def _insert(conn, table, names, columns, on_conflict=""):
    """Insert rows given as parallel columns, in their order, with an ON CONFLICT clause."""
    if len(columns[0]) == 0:
        return
    listed = ", ".join(names)
    for source in _staged_parts(conn, table, names, columns):
        # "WHERE true" tells SQLite's parser that ON CONFLICT belongs to the INSERT.
        conn.exec_driver_sql(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {source} "
                             f"WHERE true {on_conflict}")


def _on_conflict(key, update=()):
    """The ON CONFLICT clause of an upsert on `key`: overwrite `update` columns, or skip."""
    action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)
              if update else "DO NOTHING")
    return f"ON CONFLICT ({', '.join(key)}) {action}"


def insert_rows(conn, table, names, columns):
    """Insert the rows given as parallel columns into `table` (a table name)."""
    if len(columns[0]) and is_postgresql(conn):
        _copy(conn, table, names, columns)
    else:
        _insert(conn, table, names, columns)


def store_pks(conn, store_ids, known=None):
    """Map store ids to `store.id`, registering the ids not seen before.

    `known` is the Series this function returned before in the same transaction, if any;
    the table is read again only when ids are new. Returns a Series of primary keys indexed
    by store id.
    """
    def read_after(last_id):
        rows = conn.execute(sa.text("SELECT store_id, id FROM store WHERE id > :last"),
                            {"last": last_id}).all()
        return pd.Series([r[1] for r in rows], index=pd.Index([r[0] for r in rows], dtype=object),
                         dtype=np.int64)

    pks = read_after(-1) if known is None else known
    new = pd.Index(store_ids, dtype=object).difference(pks.index)
    if len(new):
        # Only ingest adds stores, one ingest at a time (under its lock), and new rows get
        # ids above every existing one: reading those is enough, not the whole table again
        # for each block of a file.
        _insert(conn, "store", ["store_id"], [new.to_numpy()], _on_conflict(["store_id"]))
        pks = pd.concat([pks, read_after(int(pks.max()) if len(pks) else -1)])
    return pks


def count_rows(conn, table):
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def add_polls(conn, store_pk, timestamp_us, active, new=None):
    """Insert polls, overwriting the status of a store and instant already present.

    The rows must be sorted by store and instant, without two of the same. They are written
    in the order of the table's key (hour, store, instant), so that each lands next to the
    one before. Returns how many rows were new (exact under the ingest lock): `new` when the
    caller knows it (from the columnar copy), else counted by looking up these rows' keys
    (up to LOOKUP_ROWS rows; a larger input counts the table before and after).
    """
    if len(store_pk) == 0:
        return 0
    names = ["hour", "store_pk", "timestamp_us", "active"]
    columns = in_key_order(store_pk, timestamp_us, active)
    empty = conn.execute(sa.text("SELECT NOT EXISTS (SELECT 1 FROM store_status)")).scalar()
    if empty:  # nothing can conflict: no key lookups, and no staging on PostgreSQL
        if is_postgresql(conn):
            _load_empty_polls_postgresql(conn, names, columns)
        else:
            insert_rows(conn, "store_status", names, columns)
        return len(store_pk)
    if new == len(store_pk) and is_postgresql(conn):
        # Every poll is new (the columnar copy says so): nothing can conflict, and COPY
        # puts them straight in place instead of a staging table and an upsert from it (an
        # hour at 140,000 stores: its ingest 0.90-1.07 -> 0.74-0.85 s).
        _copy(conn, "store_status", names, columns)
        return new
    upsert = _on_conflict(["hour", "store_pk", "timestamp_us"], ["active"])
    if new is not None or len(store_pk) <= LOOKUP_ROWS:
        present = 0
        for source in _staged_parts(conn, "store_status", names, columns):
            if new is None:
                present += conn.exec_driver_sql(
                    f"SELECT count(*) FROM {source} AS s JOIN store_status AS t "
                    "ON t.hour = s.hour AND t.store_pk = s.store_pk "
                    "AND t.timestamp_us = s.timestamp_us").scalar()
            conn.exec_driver_sql(f"INSERT INTO store_status ({', '.join(names)}) SELECT "
                                 f"{', '.join(names)} FROM {source} WHERE true {upsert}")
        return len(store_pk) - present if new is None else new
    before = count_rows(conn, "store_status")
    _insert(conn, "store_status", names, columns, upsert)
    return count_rows(conn, "store_status") - before


def _load_empty_polls_postgresql(conn, names, columns):
    """PostgreSQL, no polls yet: COPY into a new table without a key, build the key once
    over all rows, then put the table in the place of the empty one.

    Keeping the key up to date row by row made COPY take 4.3 s for 2.5 M polls; COPY
    without it and one index build took 2.6 s. A new table, not the key dropped from the
    old one: dropping it would lock the polls against every reader for the whole load,
    where the swap locks them only from here to the commit.
    """
    conn.exec_driver_sql("CREATE TABLE store_status_load (LIKE store_status INCLUDING DEFAULTS)")
    _copy(conn, "store_status_load", names, columns, like_table="store_status")
    # The key's sort in memory, not in files (2.56 M polls: 0.85 s with the default 64 MB,
    # 0.74 s with 256 MB): raised, never lowered, until this transaction ends.
    conn.exec_driver_sql(
        "SELECT set_config('maintenance_work_mem', %(memory)s, true) "
        "WHERE pg_size_bytes(current_setting('maintenance_work_mem')) "
        "< pg_size_bytes(%(memory)s)", {"memory": KEY_BUILD_MEMORY})
    conn.exec_driver_sql("ALTER TABLE store_status_load ADD CONSTRAINT store_status_load_pkey "
                         "PRIMARY KEY (hour, store_pk, timestamp_us)")
    conn.exec_driver_sql("DROP TABLE store_status")
    conn.exec_driver_sql("ALTER TABLE store_status_load RENAME TO store_status")
    conn.exec_driver_sql("ALTER INDEX store_status_load_pkey RENAME TO store_status_pkey")


def replace_hours(conn, named_pks, columns):
    """Drop the hours of the stores in `named_pks`, then insert the given rows."""
    if len(named_pks):
        named = _staged(conn, "business_hours", ["store_pk"], [named_pks])
        conn.exec_driver_sql(f"DELETE FROM business_hours WHERE store_pk IN "
                             f"(SELECT store_pk FROM {named})")
    insert_rows(conn, "business_hours",
                ["store_pk", "day_of_week", "start_local_s", "end_local_s"], columns)


def upsert_timezones(conn, store_pk, timezone_str):
    _insert(conn, "store_timezone", ["store_pk", "timezone_str"], [store_pk, timezone_str],
            _on_conflict(["store_pk"], ["timezone_str"]))
