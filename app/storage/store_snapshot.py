"""Read what the engine needs to draw one store: its polls, hours and zone, and `now`.

A store's polls are found through the primary key (hour, store, instant), one step down it
per hour from the first poll of all to the latest, so this costs milliseconds whatever the
number of stores. `now` (the latest poll of all stores) is the latest of the last hour's
polls; it only changes with an ingest, so each process keeps it per data version
(`data_version`, new with every ingest).
"""

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from app.extensions import db
from app.storage.models import BusinessHours, DataVersion, Store, StoreStatus, StoreTimezone


@dataclass
class StoreSnapshot:
    """The frames `build_timelines` takes, for one store, and the `now` of all the data."""

    store_id: str
    polls: pd.DataFrame
    hours: pd.DataFrame
    zones: pd.DataFrame
    now_us: int


_latest = {"key": None, "now_us": None}
_latest_lock = threading.Lock()


def latest_poll_us(conn, data_version):
    """The latest poll of all stores, read once per `data_version` (new with every ingest):
    the latest among the polls of the last hour, found at the end of the primary key."""
    key = (str(db.engine.url), data_version)
    with _latest_lock:
        if _latest["key"] == key:
            return _latest["now_us"]
    now_us = kept_poll_bounds(conn)[1]
    with _latest_lock:
        _latest.update(key=key, now_us=now_us)
    return now_us


def kept_poll_bounds(conn):
    """The earliest and the latest poll [µs] of the committed data (None, None without
    polls): as `data_version` keeps them, else found by `poll_bounds`. Not in an ingest's
    transaction once it has written polls: `data_version` counts them only at its end."""
    kept = conn.execute(sa.select(DataVersion.first_poll_us, DataVersion.latest_poll_us)
                        ).first()
    if kept is not None and None not in tuple(kept):
        return tuple(kept)
    return poll_bounds(conn)


def poll_bounds(conn):
    """The earliest and the latest poll [µs] (None, None without polls): each found among
    one hour's polls (a million at a million stores), at an end of the primary key."""
    return conn.execute(sa.select(
        sa.select(sa.func.min(StoreStatus.timestamp_us))
        .where(StoreStatus.hour == _first_hour()).scalar_subquery(),
        sa.select(sa.func.max(StoreStatus.timestamp_us))
        .where(StoreStatus.hour == _last_hour()).scalar_subquery())).one()


def _last_hour():
    return sa.select(sa.func.max(StoreStatus.hour)).scalar_subquery()


def _first_hour():
    return sa.select(sa.func.min(StoreStatus.hour)).scalar_subquery()


def hours_with_polls(conn):
    """Every hour from the first poll's to the latest one's (empty without polls): what a
    query for some stores' polls names, so that it steps down the key once per hour
    instead of reading every poll."""
    first, last = conn.execute(sa.select(_first_hour(), _last_hour())).one()
    return [] if first is None else list(range(int(first), int(last) + 1))


def read_store(store_id):
    """One store's rows and `now`, from one consistent view; None if it has no polls."""
    if "\x00" in store_id:  # no store has one (ingest rejects them); PostgreSQL refuses it
        return None
    with db.engine.begin() as conn:
        found = conn.execute(
            sa.select(Store.id, StoreTimezone.timezone_str,
                      sa.select(DataVersion.version).scalar_subquery())
            .outerjoin(StoreTimezone, StoreTimezone.store_pk == Store.id)
            .where(Store.store_id == store_id)).first()
        if found is None:
            return None
        store_pk, zone, data_version = found
        polls = conn.execute(
            sa.select(StoreStatus.timestamp_us, StoreStatus.active)
            .where(StoreStatus.hour.in_(hours_with_polls(conn)),
                   StoreStatus.store_pk == store_pk)
            .order_by(StoreStatus.timestamp_us)).all()
        if not polls:
            return None
        hours = conn.execute(
            sa.select(BusinessHours.day_of_week, BusinessHours.start_local_s,
                      BusinessHours.end_local_s)
            .where(BusinessHours.store_pk == store_pk)
            .order_by(BusinessHours.day_of_week, BusinessHours.start_local_s)).all()
        now_us = latest_poll_us(conn, data_version)
    instants, active = zip(*polls)
    # Store ids as categoricals sharing one category: the engine then maps stores by code.
    def ids(count):
        return pd.Categorical.from_codes(np.zeros(count, dtype=np.int8), categories=[store_id])
    return StoreSnapshot(
        store_id=store_id,
        polls=pd.DataFrame({"store_id": ids(len(polls)),
                            "timestamp_us": np.array(instants, dtype=np.int64),
                            "active": np.array(active, dtype=bool)}),
        hours=pd.DataFrame({
            "store_id": ids(len(hours)),
            **{name: np.array([row[i] for row in hours], dtype=np.int64)
               for i, name in enumerate(("day_of_week", "start_local_s", "end_local_s"))}}),
        zones=pd.DataFrame({"store_id": ids(1 if zone is not None else 0),
                            "timezone_str": pd.Series([zone] if zone is not None else [],
                                                      dtype=object)}),
        now_us=max(int(now_us), int(instants[-1])),
    )
