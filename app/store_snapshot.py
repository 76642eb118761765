"""Read what the engine needs to draw one store: its polls, hours and zone, and `now`.

A store's polls are found through the primary key (store, instant), so this costs a few
milliseconds whatever the size of the data. `now` (the latest poll of all stores) would
need a scan of every poll; it only changes with an ingest, so each process keeps it per
latest ingest id.
"""

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .extensions import db
from .models import BusinessHours, Ingest, Store, StoreStatus, StoreTimezone


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


def latest_poll_us(conn):
    """The latest poll of all stores, read once per ingest (None without polls)."""
    key = (str(db.engine.url), conn.execute(sa.select(sa.func.max(Ingest.id))).scalar())
    with _latest_lock:
        if _latest["key"] == key:
            return _latest["now_us"]
    now_us = conn.execute(sa.select(sa.func.max(StoreStatus.timestamp_us))).scalar()
    with _latest_lock:
        _latest.update(key=key, now_us=now_us)
    return now_us


def read_store(store_id):
    """One store's rows and `now`, from one consistent view; None if it has no polls."""
    with db.engine.begin() as conn:
        store_pk = conn.execute(sa.select(Store.id).where(Store.store_id == store_id)).scalar()
        if store_pk is None:
            return None
        polls = conn.execute(
            sa.select(StoreStatus.timestamp_us, StoreStatus.active)
            .where(StoreStatus.store_pk == store_pk).order_by(StoreStatus.timestamp_us)).all()
        if not polls:
            return None
        hours = conn.execute(
            sa.select(BusinessHours.day_of_week, BusinessHours.start_local_s,
                      BusinessHours.end_local_s)
            .where(BusinessHours.store_pk == store_pk)
            .order_by(BusinessHours.day_of_week, BusinessHours.start_local_s)).all()
        zone = conn.execute(sa.select(StoreTimezone.timezone_str)
                            .where(StoreTimezone.store_pk == store_pk)).scalar()
        now_us = latest_poll_us(conn)
    instants, active = zip(*polls)
    return StoreSnapshot(
        store_id=store_id,
        polls=pd.DataFrame({"store_id": pd.Series([store_id] * len(polls), dtype=object),
                            "timestamp_us": np.array(instants, dtype=np.int64),
                            "active": np.array(active, dtype=bool)}),
        hours=pd.DataFrame({
            "store_id": pd.Series([store_id] * len(hours), dtype=object),
            **{name: np.array([row[i] for row in hours], dtype=np.int64)
               for i, name in enumerate(("day_of_week", "start_local_s", "end_local_s"))}}),
        zones=pd.DataFrame({"store_id": pd.Series([store_id] if zone is not None else [],
                                                  dtype=object),
                            "timezone_str": pd.Series([zone] if zone is not None else [],
                                                      dtype=object)}),
        now_us=max(int(now_us), int(instants[-1])),
    )
