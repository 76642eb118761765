"""Remove polls: by store and time range, in one transaction, recorded like an ingest.

An operator removes bad data this way (polls loaded by mistake, a clock that ran wrong). The
removal is an `ingest` record whose one file entry has kind `deleted` (`read` and `loaded`
count the polls removed), so `/api/v1/ingests` lists it. When it removed polls it gives the
data a new version, so reports and the columnar copy of the data see the change.
"""

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from blinker import Namespace
from flask import current_app

from app.engine.instants import iso_instant
from app.ingest import bulk
from app.storage.models import DataVersion, Ingest, IngestFile, Store, StoreStatus, hour_of
from app.storage.store_snapshot import hours_with_polls

DELETED = "deleted"  # the kind of the file entry of a removal
# Sent with the app as sender, inside the removal's transaction (`conn`), when polls were
# removed: what is derived from the polls (the live state) is brought up to date with it.
polls_removed = Namespace().signal("polls-removed")


@dataclass
class Removal:
    ingest_id: int
    source: str
    removed: int


def describe(store_ids, from_us, to_us):
    """The removal in words, as its ingest record shows it."""
    stores = ", ".join(store_ids[:5]) + (f" and {len(store_ids) - 5} more"
                                          if len(store_ids) > 5 else "")
    parts = ["delete polls", f"of stores {stores}" if store_ids else "of every store"]
    if from_us is not None:
        parts.append(f"from {iso_instant(from_us)}")
    if to_us is not None:
        parts.append(f"before {iso_instant(to_us)}")
    return " ".join(parts)[:500]


def delete_polls(store_ids=(), from_us=None, to_us=None, wait=True):
    """Remove the polls of `store_ids` (all stores when empty) at instants in
    ``[from_us, to_us)`` (µs; None: unbounded on that side). At least one bound or one store
    is needed. Returns the `Removal`; raises `bulk.IngestBusy` without `wait` while an
    ingest runs."""
    store_ids = list(dict.fromkeys(store_ids))
    if not store_ids and from_us is None and to_us is None:
        raise ValueError("name stores or a time range: removing every poll is not offered")
    shown = describe(store_ids, from_us, to_us)
    with bulk.writing_transaction(wait) as conn:
        conditions = []
        if store_ids:
            # One step down the key (hour, store, instant) per hour in the range, instead of
            # a read of every poll.
            hours = [hour for hour in hours_with_polls(conn)
                     if (from_us is None or hour >= hour_of(from_us))
                     and (to_us is None or hour <= hour_of(to_us - 1))]
            pks = sa.select(Store.id).where(Store.store_id.in_(store_ids)).scalar_subquery()
            conditions += [StoreStatus.hour.in_(hours), StoreStatus.store_pk.in_(pks)]
        if from_us is not None:
            conditions.append(StoreStatus.timestamp_us >= from_us)
        if to_us is not None:
            conditions.append(StoreStatus.timestamp_us < to_us)
        removed = conn.execute(sa.delete(StoreStatus).where(*conditions)).rowcount
        ingest_id = conn.execute(sa.insert(Ingest).values(
            source=shown, fingerprint=uuid.uuid4().hex)).inserted_primary_key[0]
        conn.execute(sa.insert(IngestFile).values(
            ingest_id=ingest_id, kind=DELETED, name="store_status", read=removed,
            loaded=removed, duplicate=0, rejected=0))
        if removed:  # nothing removed: the data, its copy and its reports stay valid
            # Which stores lost their last poll is not known without counting; stores,
            # hours and zones are as they were, so their facts carry over.
            version = uuid.uuid4().hex
            conn.execute(sa.update(DataVersion).values(
                version=version, polls=DataVersion.polls - removed, stores_with_polls=None,
                first_poll_us=None, latest_poll_us=None,
                facts_version=sa.case((DataVersion.facts_version == DataVersion.version,
                                       version), else_=DataVersion.facts_version)))
            polls_removed.send(current_app._get_current_object(), conn=conn)
    return Removal(ingest_id, shown, removed)
