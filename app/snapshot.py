"""Read everything a report needs, from one consistent view of the database.

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
from contextlib import closing
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc_postgresql
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from .extensions import db

# SQLite caps one text value at 1e9 bytes; a poll takes about 30 bytes of text.
SQLITE_CHUNK_ROWS = 2_000_000

_QUERIES = {
    "polls": ("store_status", ["store_pk", "timestamp_us", "active"]),
    "hours": ("business_hours", ["store_pk", "day_of_week", "start_local_s", "end_local_s"]),
    "stores": ("store", ["id", "store_id"]),
    "zones": ("store_timezone", ["store_pk", "timezone_str"]),
}


@dataclass
class Snapshot:
    """The engine's input: `polls`, `hours` and `zones` frames keyed by `store_id`."""

    polls: pd.DataFrame
    hours: pd.DataFrame
    zones: pd.DataFrame


def read_snapshot():
    """Read the tables in one transaction, so that an ingest running meanwhile is seen
    either whole or not at all.

    Store ids come back as a categorical column sharing one set of categories, which keeps
    millions of polls as small integer codes.
    """
    if db.engine.dialect.name == "postgresql":
        tables = _read_postgresql(db.engine.url)
    else:
        with db.engine.begin() as conn:
            tables = _read_sqlite(conn)
    polls, hours, stores, zones = (tables[name] for name in ("polls", "hours", "stores",
                                                               "zones"))
    to_store_id = _store_id_decoder(stores)
    return Snapshot(
        polls=pd.DataFrame({"store_id": to_store_id(polls["store_pk"]),
                            "timestamp_us": _ints(polls["timestamp_us"]),
                            "active": polls["active"].to_numpy(dtype=bool)}),
        hours=pd.DataFrame({"store_id": to_store_id(hours["store_pk"]),
                            **{c: _ints(hours[c]) for c in ("day_of_week", "start_local_s",
                                                            "end_local_s")}}),
        zones=pd.DataFrame({"store_id": to_store_id(zones["store_pk"]),
                            "timezone_str": zones["timezone_str"].astype(object)}),
    )


def _read_postgresql(url):
    """Every table as a data frame, through ADBC, in one REPEATABLE READ transaction."""
    uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with closing(adbc_postgresql.connect(uri)) as conn, closing(conn.cursor()) as cursor:
        # The driver has opened a transaction; this must be its first statement.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        tables = {}
        for name, (table, columns) in _QUERIES.items():
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")
            tables[name] = cursor.fetch_arrow_table().to_pandas()
        conn.rollback()
    return tables


def _read_sqlite(conn):
    """Every table as a data frame; the first read fixes the transaction's view."""
    tables = {}
    for name, (table, columns) in _QUERIES.items():
        if name in ("polls", "hours"):
            tables[name] = _group_concat(conn, table, columns)
        else:
            rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}")).all()
            tables[name] = pd.DataFrame(rows, columns=columns, dtype=object)
    return tables


def _group_concat(conn, table, columns):
    """An all-integer table, written as CSV text by SQLite and parsed by Arrow."""
    low, high, count = conn.execute(sa.text(
        f"SELECT min(store_pk), max(store_pk), count(*) FROM {table}")).one()
    parts = []
    if count:
        chunks = -(-count // SQLITE_CHUNK_ROWS)
        bounds = np.linspace(low, high + 1, chunks + 1).astype(np.int64)
        row = " || ',' || ".join(columns)
        sql = sa.text(f"SELECT group_concat({row}, char(10)) FROM {table} "
                      "WHERE store_pk >= :lo AND store_pk < :hi")
        options = pacsv.ReadOptions(column_names=columns)
        convert = pacsv.ConvertOptions(column_types={c: pa.int64() for c in columns})
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            text = conn.execute(sql, {"lo": int(lo), "hi": int(hi)}).scalar()
            if text:
                parts.append(pacsv.read_csv(io.BytesIO(text.encode()), read_options=options,
                                            convert_options=convert))
    whole = pa.concat_tables(parts) if parts else pa.table(
        {c: pa.array([], pa.int64()) for c in columns})
    return whole.to_pandas()


def _ints(column):
    return column.to_numpy(dtype=np.int64)


def _store_id_decoder(stores):
    """A function turning `store.id` values into a categorical of store ids."""
    pks = _ints(stores["id"])
    categories = pd.Index(stores["store_id"].to_numpy(dtype=object), dtype=object)
    code_of_pk = np.full(pks.max() + 1 if len(pks) else 1, -1, dtype=np.int64)
    code_of_pk[pks] = np.arange(len(pks))
    return lambda pk: pd.Categorical.from_codes(code_of_pk[_ints(pk)], categories=categories)
