"""Read everything a report needs, from one consistent view of the data.

The fastest source is the columnar copy of the current data version (`snapshot_copy`):
memory-mapped Arrow files, read in milliseconds. The database is the system of record:
without a copy of its current version, the tables are read from it, and the copy is
written for the next report. Either way the data version is read in the same transaction
as the data, so a report sees exactly the data of one committed ingest.

Millions of polls would cost a Python tuple each through a DB-API cursor (about 1 µs per
row), and would hold the GIL all that time, stalling the requests served meanwhile.
Instead:

- SQLite writes the polls as CSV text (`group_concat` over bounded chunks) and Arrow's CSV
  reader parses it in C++: six times faster than a cursor.
- PostgreSQL is read through ADBC, which hands back Arrow columns (binary COPY in C++,
  without the GIL). SQLite is not: the ADBC driver brings its own copy of the SQLite
  library, and two copies in one process break each other's file locks.
"""

import io
import logging
from contextlib import closing
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc_postgresql
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.storage import columnar
from app.storage.arrow_arrays import as_bool, as_int64
from app.storage.database import is_postgresql
from app.storage.poll_order import by_store
from app.storage.poll_parts import PollParts, polls_table

log = logging.getLogger(__name__)

# SQLite caps one text value at 1e9 bytes; a poll takes about 30 bytes of text.
SQLITE_CHUNK_ROWS = 2_000_000

QUERIES = {
    "polls": ("store_status", ["store_pk", "timestamp_us", "active"]),
    "hours": ("business_hours", ["store_pk", "day_of_week", "start_local_s", "end_local_s"]),
    "stores": ("store", ["id", "store_id"]),
    "zones": ("store_timezone", ["store_pk", "timezone_str"]),
}
# Tables whose columns are all integers (read as CSV text on SQLite).
_INTEGER_TABLES = ("polls", "hours")
_VERSION_QUERY = "SELECT version FROM data_version"


@dataclass
class Snapshot:
    """The engine's input: `polls`, `hours` and `zones` frames keyed by `store_id`, and the
    data version they are the data of."""

    polls: pd.DataFrame
    hours: pd.DataFrame
    zones: pd.DataFrame
    version: str | None = None


def read_snapshot():
    """The data of one committed ingest: from its columnar copy, or from the database (in
    one transaction, so that an ingest running meanwhile is seen whole or not at all).

    Store ids come back as a categorical column sharing one set of categories, which keeps
    millions of polls as small integer codes.
    """
    copies = columnar.for_current_app()
    if is_postgresql(db.engine):
        version, tables = _read_postgresql(db.engine.url, copies)
    else:
        with db.engine.begin() as conn:
            version = conn.exec_driver_sql(_VERSION_QUERY).scalar()
            tables = copies.load(version) or read_tables(conn)
    if copies.enabled and not copies.has(version):
        copies.save(version, tables)
    return to_snapshot(version, tables)


def to_snapshot(version, tables):
    """A `Snapshot` from Arrow tables shaped as `QUERIES` says (the polls may be
    `PollParts`: the frame then holds each store's polls as a run per part)."""
    to_store_id = _store_id_decoder(tables["stores"])
    polls, hours, zones = PollParts.of(tables["polls"]).table(), tables["hours"], tables["zones"]
    return Snapshot(
        polls=pd.DataFrame({"store_id": to_store_id(polls["store_pk"]),
                            "timestamp_us": as_int64(polls["timestamp_us"]),
                            "active": as_bool(polls["active"])}, copy=False),
        hours=pd.DataFrame({"store_id": to_store_id(hours["store_pk"]),
                            **{c: as_int64(hours[c]) for c in ("day_of_week", "start_local_s",
                                                            "end_local_s")}}),
        zones=pd.DataFrame({"store_id": to_store_id(zones["store_pk"]),
                            "timezone_str": zones["timezone_str"].to_numpy().astype(object)}),
        version=version,
    )


def read_version(conn):
    """The database's data version, read through `conn` (a SQLAlchemy connection)."""
    return conn.exec_driver_sql(_VERSION_QUERY).scalar()


def read_tables(conn, names=tuple(QUERIES)):
    """The tables `names` as Arrow tables, through `conn` (a SQLAlchemy connection, SQLite or
    PostgreSQL) and within its transaction; the polls sorted by store, then instant."""
    return {name: _in_store_order(name, _read_table(conn, name)) for name in names}


def _in_store_order(name, table):
    """The polls (`name` "polls") sorted by store, then instant, as the copy and the engine
    keep them: the table holds them by hour first. Other tables as they are."""
    if name != "polls":
        return table
    return polls_table(*by_store(as_int64(table["store_pk"]), as_int64(table["timestamp_us"]),
                                 as_bool(table["active"])))


def _read_table(conn, name):
    table, columns = QUERIES[name]
    if is_postgresql(conn):
        return _copy_out(conn, table, columns) if name == "polls" else \
            _json_lines(conn, table, columns)
    if name in _INTEGER_TABLES:
        return _group_concat(conn, table, columns)
    rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}")).all()
    types = _types(columns)
    return pa.table({column: pa.array([row[i] for row in rows], types[column])
                     for i, column in enumerate(columns)})


# The text columns of the tables `QUERIES` names; every other column is read as an integer.
_TEXT_COLUMNS = ("store_id", "timezone_str")


def _types(columns):
    return {c: pa.string() if c in _TEXT_COLUMNS else pa.int64() for c in columns}


def _no_rows(types):
    return pa.table({c: pa.array([], t) for c, t in types.items()})


def empty_table(name):
    """The table `name` of `QUERIES` without rows, typed as `read_tables` reads it."""
    return _no_rows(_types(QUERIES[name][1]))


def _json_lines(conn, table, columns):
    """PostgreSQL, through psycopg: a table of at most a few rows per store as one text
    value of JSON lines that Arrow parses (COPY hands each row over on its own: 0.4 s for
    the 110,000 rows of hours and zones of 14,000 stores)."""
    fields = ", ".join(f"'{column}', {column}" for column in columns)
    text = conn.execute(sa.text(f"SELECT string_agg(json_build_object({fields})::text, "
                                f"E'\\n') FROM {table}")).scalar()
    types = _types(columns)
    if not text:
        return _no_rows(types)
    return pajson.read_json(io.BytesIO(text.encode()), parse_options=pajson.ParseOptions(
        explicit_schema=pa.schema(list(types.items())), unexpected_field_behavior="error"))


def _copy_out(conn, table, columns):
    """PostgreSQL, through psycopg: a table as CSV text that Arrow parses."""
    buffer = io.BytesIO()
    with conn.connection.cursor() as cursor, cursor.copy(
            f"COPY (SELECT {', '.join(columns)} FROM {table}) TO STDOUT WITH (FORMAT csv)"
    ) as copy:
        for block in copy:
            buffer.write(block)
    types = _types(columns)
    if buffer.tell() == 0:
        return _no_rows(types)
    buffer.seek(0)
    # Booleans come as t/f.
    return pacsv.read_csv(buffer, read_options=pacsv.ReadOptions(column_names=columns),
                          convert_options=pacsv.ConvertOptions(
                              column_types={c: pa.bool_() if c == "active" else t
                                            for c, t in types.items()},
                              strings_can_be_null=False, quoted_strings_can_be_null=False,
                              true_values=["t"], false_values=["f"]))


def _read_postgresql(url, copies):
    """The data version and every table, through ADBC, in one REPEATABLE READ transaction
    (the tables only when the copy of that version is missing)."""
    uri = _bounded(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with closing(adbc_postgresql.connect(uri)) as conn, closing(conn.cursor()) as cursor:
        # The driver has opened a transaction; this must be its first statement.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(_VERSION_QUERY)
        version = cursor.fetchone()[0]
        tables = copies.load(version)
        if tables is None:
            tables = {}
            for name, (table, columns) in QUERIES.items():
                cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")
                tables[name] = _in_store_order(name, cursor.fetch_arrow_table())
        conn.rollback()
    return version, tables


def _bounded(url):
    """`url` with the connect timeout and keepalives of the service's own connections, so
    that a snapshot cannot wait forever on a database that went away (the read itself may
    take long: no statement timeout)."""
    timeout = current_app.config["DATABASE_CONNECT_TIMEOUT"]
    return url.update_query_dict({
        "connect_timeout": str(max(2, round(timeout))), "keepalives": "1",
        "keepalives_idle": "30", "keepalives_interval": "5", "keepalives_count": "3",
        "tcp_user_timeout": str(round(timeout * 1000))})


def _group_concat(conn, table, columns):
    """An all-integer table, written as CSV text by SQLite and parsed by Arrow, in chunks
    of about SQLITE_CHUNK_ROWS rows along the first column of its key (the polls' hour,
    the hours' store), each chunk one range of the key."""
    key = _CHUNKED_BY[table]
    low, high, count = conn.execute(sa.text(
        f"SELECT min({key}), max({key}), count(*) FROM {table}")).one()
    parts = []
    if count:
        chunks = -(-count // SQLITE_CHUNK_ROWS)
        bounds = np.unique(np.linspace(low, high + 1, chunks + 1).astype(np.int64))
        row = " || ',' || ".join(columns)
        sql = sa.text(f"SELECT group_concat({row}, char(10)) FROM {table} "
                      f"WHERE {key} >= :lo AND {key} < :hi")
        options = pacsv.ReadOptions(column_names=columns)
        convert = pacsv.ConvertOptions(column_types={c: pa.int64() for c in columns})
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            text = conn.execute(sql, {"lo": int(lo), "hi": int(hi)}).scalar()
            if text:
                parts.append(pacsv.read_csv(io.BytesIO(text.encode()), read_options=options,
                                            convert_options=convert))
    if not parts:
        return _no_rows(_types(columns))
    return pa.concat_tables(parts).combine_chunks()


# The key column `_group_concat` reads an integer table by: the first of its index.
_CHUNKED_BY = {"store_status": "hour", "business_hours": "store_pk"}


def _store_id_decoder(stores):
    """A function turning `store.id` values into a categorical of store ids."""
    pks = as_int64(stores["id"])
    categories = pd.Index(stores["store_id"].to_numpy().astype(object), dtype=object)
    # Codes as narrow as pandas keeps them (int16 for thousands of stores), so that the
    # millions of polls are mapped in one pass, without a second one to narrow them; they
    # are -1 or a category's position by construction, so pandas need not check them.
    # (At least int8: with no stores at all, -0 would give an unsigned type, which has no -1.)
    code_of_pk = np.full(pks.max() + 1 if len(pks) else 1, -1,
                         dtype=np.min_scalar_type(-max(len(pks), 1)))
    code_of_pk[pks] = np.arange(len(pks))

    def decode(pk):
        # Chunk by chunk (the parts of the copy's polls): the keys are not gathered into
        # one array first, only the narrower codes are.
        chunks = pk.chunks if isinstance(pk, pa.ChunkedArray) and pk.num_chunks > 1 else [pk]
        codes = [code_of_pk[as_int64(chunk)] for chunk in chunks]
        return pd.Categorical.from_codes(codes[0] if len(codes) == 1 else np.concatenate(codes),
                                         categories=categories, validate=False)
    return decode
