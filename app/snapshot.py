"""Read everything a report needs, from one consistent view of the database."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .extensions import db

FETCH_ROWS = 500_000


@dataclass
class Snapshot:
    """The engine's input: `polls`, `hours` and `zones` frames keyed by `store_id`."""

    polls: pd.DataFrame
    hours: pd.DataFrame
    zones: pd.DataFrame


def read_snapshot():
    """Read the three tables in one transaction, so that an ingest running meanwhile is
    seen either whole or not at all.

    Store ids come back as a categorical column sharing one set of categories, which keeps
    millions of polls as small integer codes.
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.begin() as conn:
        # On SQLite the first read fixes the snapshot for the rest of the transaction.
        polls = _read_ints(conn, "SELECT store_pk, timestamp_us, active FROM store_status", 3)
        stores = conn.execute(sa.text("SELECT id, store_id FROM store")).all()
        hours = _read_ints(conn, "SELECT store_pk, day_of_week, start_local_s, end_local_s "
                                 "FROM business_hours", 4)
        zones = conn.execute(sa.text("SELECT store_pk, timezone_str FROM store_timezone")).all()

    to_store_id = _store_id_decoder(stores)
    zone_pk = np.array([row[0] for row in zones], dtype=np.int64)
    return Snapshot(
        polls=pd.DataFrame({"store_id": to_store_id(polls[:, 0]),
                            "timestamp_us": polls[:, 1], "active": polls[:, 2].astype(bool)}),
        hours=pd.DataFrame({"store_id": to_store_id(hours[:, 0]), "day_of_week": hours[:, 1],
                            "start_local_s": hours[:, 2], "end_local_s": hours[:, 3]}),
        zones=pd.DataFrame({"store_id": to_store_id(zone_pk),
                            "timezone_str": pd.Series([row[1] for row in zones], dtype=object)}),
    )


def _read_ints(conn, sql, width):
    """All rows of an all-integer query as one int64 array, fetched in bounded chunks."""
    # The driver's own cursor yields plain tuples, which numpy converts without Python calls.
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        chunks = []
        while rows := cursor.fetchmany(FETCH_ROWS):
            chunks.append(np.array(rows, dtype=np.int64))
    finally:
        cursor.close()
    return np.concatenate(chunks) if chunks else np.empty((0, width), dtype=np.int64)


def _store_id_decoder(stores):
    """A function turning `store.id` values into a categorical of store ids."""
    pks = np.array([row[0] for row in stores], dtype=np.int64)
    categories = pd.Index([row[1] for row in stores], dtype=object)
    code_of_pk = np.full(pks.max() + 1 if len(pks) else 1, -1, dtype=np.int64)
    code_of_pk[pks] = np.arange(len(pks))
    return lambda pk: pd.Categorical.from_codes(code_of_pk[pk], categories=categories)
