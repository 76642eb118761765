"""Read everything a report needs, from one consistent view of the database.

Millions of polls would cost a Python tuple each through a DB-API cursor (about 1 µs per row).
Instead the database writes the rows as CSV text (SQLite: `group_concat` over bounded chunks;
PostgreSQL: `COPY ... TO STDOUT`) and Arrow's CSV reader parses it in C++: about six times
faster, and no Python object per value.
"""

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from .extensions import db

# SQLite caps one text value at 1e9 bytes; a poll takes about 30 bytes of text.
SQLITE_CHUNK_ROWS = 2_000_000


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
    engine = db.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.begin() as conn:
        # On SQLite the first read fixes the view for the rest of the transaction.
        polls = _read_columns(conn, "store_status", {
            "store_pk": pa.int64(), "timestamp_us": pa.int64(), "active": pa.bool_()})
        hours = _read_columns(conn, "business_hours", {
            "store_pk": pa.int64(), "day_of_week": pa.int64(), "start_local_s": pa.int64(),
            "end_local_s": pa.int64()})
        stores = conn.execute(sa.text("SELECT id, store_id FROM store")).all()
        zones = conn.execute(sa.text("SELECT store_pk, timezone_str FROM store_timezone")).all()

    to_store_id = _store_id_decoder(stores)
    return Snapshot(
        polls=pd.DataFrame({"store_id": to_store_id(polls["store_pk"]),
                            "timestamp_us": polls["timestamp_us"],
                            "active": polls["active"]}),
        hours=pd.DataFrame({"store_id": to_store_id(hours["store_pk"]),
                            **{c: hours[c] for c in ("day_of_week", "start_local_s",
                                                     "end_local_s")}}),
        zones=pd.DataFrame({"store_id": to_store_id(np.array([z[0] for z in zones], np.int64)),
                            "timezone_str": pd.Series([z[1] for z in zones], dtype=object)}),
    )


def _read_columns(conn, table, types):
    """Whole columns of a table, typed as `types` says (integers and booleans only)."""
    columns = list(types)
    if conn.dialect.name == "postgresql":
        texts = [_copy_out(conn, table, columns)]
    else:
        texts = _group_concat_chunks(conn, table, columns)
    options = pacsv.ReadOptions(column_names=columns)
    # SQLite writes booleans as 0/1, PostgreSQL as t/f.
    convert = pacsv.ConvertOptions(column_types=types, true_values=["1", "t"],
                                   false_values=["0", "f"])
    parts = [pacsv.read_csv(io.BytesIO(text), read_options=options, convert_options=convert)
             for text in texts if text]
    whole = pa.concat_tables(parts) if parts else pa.table(
        {c: pa.array([], t) for c, t in types.items()})
    return {c: whole.column(c).to_numpy() for c in columns}


def _group_concat_chunks(conn, table, columns):
    """SQLite: the table as CSV texts, one per range of `store_pk` of bounded size."""
    low, high, count = conn.execute(sa.text(
        f"SELECT min(store_pk), max(store_pk), count(*) FROM {table}")).one()
    if not count:
        return []
    chunks = -(-count // SQLITE_CHUNK_ROWS)
    bounds = np.linspace(low, high + 1, chunks + 1).astype(np.int64)
    row = " || ',' || ".join(columns)
    sql = sa.text(f"SELECT group_concat({row}, char(10)) FROM {table} "
                  "WHERE store_pk >= :lo AND store_pk < :hi")
    return [(conn.execute(sql, {"lo": int(lo), "hi": int(hi)}).scalar() or "").encode()
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def _copy_out(conn, table, columns):
    """PostgreSQL: the table as CSV text through COPY."""
    select = f"SELECT {', '.join(columns)} FROM {table}"
    buffer = io.BytesIO()
    with conn.connection.cursor() as cursor, \
            cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)") as copy:
        for block in copy:
            buffer.write(block)
    return buffer.getvalue()


def _store_id_decoder(stores):
    """A function turning `store.id` values into a categorical of store ids."""
    pks = np.array([row[0] for row in stores], dtype=np.int64)
    categories = pd.Index([row[1] for row in stores], dtype=object)
    code_of_pk = np.full(pks.max() + 1 if len(pks) else 1, -1, dtype=np.int64)
    code_of_pk[pks] = np.arange(len(pks))
    return lambda pk: pd.Categorical.from_codes(code_of_pk[pk], categories=categories)
