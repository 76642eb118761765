"""What has been loaded: ingest records, their rejected rows, and a summary of the data.

Read-only queries for the API; each answer is plain dicts and lists, ready for a schema.
"""

from datetime import datetime, timezone
from pathlib import PurePath

import sqlalchemy as sa

from app.engine.instants import datetime_us, iso_datetime, iso_instant
from app.engine.zones import resolve_zones
from app.extensions import db
from app.storage.database import read_apart, text_before
from app.storage.models import (
    BusinessHours,
    DataVersion,
    Ingest,
    IngestFile,
    IngestRejection,
    Store,
    StoreStatus,
    StoreTimezone,
)
from app.storage.store_snapshot import kept_poll_bounds

SHOWN_REJECTIONS = 20  # in the answer to an upload; all of them are paged separately
_COUNTS = ("read", "loaded", "duplicate", "rejected")


def describe_ingests(ingest_ids):
    """Each ingest's record and per-file accounting, in the order of `ingest_ids`."""
    ingests = db.session.execute(sa.select(Ingest).where(Ingest.id.in_(ingest_ids))).scalars()
    files = db.session.execute(sa.select(IngestFile).where(IngestFile.ingest_id.in_(ingest_ids))
                               .order_by(IngestFile.id)).scalars()
    by_id = {i.id: {"ingest_id": i.id, "source": shown_source(i.source),
                    "fingerprint": i.fingerprint,
                    "created_at": iso_datetime(i.created_at), "files": [],
                    **{name: 0 for name in _COUNTS}} for i in ingests}
    for f in files:
        entry = by_id[f.ingest_id]
        entry["files"].append({"kind": f.kind, "name": f.name,
                               **{name: getattr(f, name) for name in _COUNTS}})
        for name in _COUNTS:
            entry[name] += getattr(f, name)
    return [by_id[i] for i in ingest_ids if i in by_id]


def shown_source(source):
    """What clients see of an ingest's source: an upload or a removal as recorded, a path
    of the server by its last part only (the server's folders are nobody's business)."""
    if source.startswith(("upload ", "delete ")):
        return source
    return PurePath(source).name or source


def describe_ingest(ingest_id, rejections=SHOWN_REJECTIONS):
    """One ingest with its first rejected rows; None when there is no such ingest."""
    found = describe_ingests([ingest_id])
    if not found:
        return None
    found[0]["rejections"] = rejection_page(ingest_id, 0, rejections)
    return found[0]


def list_ingests(page, per_page):
    """``(total, ingests)``: one page of ingests, newest first."""
    total = db.session.execute(sa.select(sa.func.count()).select_from(Ingest)).scalar()
    ids = db.session.execute(sa.select(Ingest.id).order_by(Ingest.id.desc())
                             .offset((page - 1) * per_page).limit(per_page)).scalars().all()
    return total, describe_ingests(ids)


def ingest_exists(ingest_id):
    return db.session.get(Ingest, ingest_id) is not None


def count_rejections(ingest_id):
    return db.session.execute(sa.select(sa.func.count()).select_from(IngestRejection)
                              .where(IngestRejection.ingest_id == ingest_id)).scalar()


def rejection_page(ingest_id, offset, limit):
    """Rejected rows of an ingest in the order they were met: file, line, reason."""
    rows = db.session.execute(
        sa.select(IngestRejection.file, IngestRejection.line, IngestRejection.reason)
        .where(IngestRejection.ingest_id == ingest_id).order_by(IngestRejection.id)
        .offset(offset).limit(limit)).all()
    return [{"file": r.file, "line": r.line, "reason": r.reason} for r in rows]


def _once_per_data(slot, conn, compute):
    """`compute()` once per state of the loaded data in this process: `slot` (a one-item
    list) keeps ((database, data version, latest ingest), value), swapped whole. Reading the
    key is two one-row reads."""
    return _once_per(slot, (
        str(db.engine.url), conn.execute(sa.select(DataVersion.version)).scalar(),
        conn.execute(sa.select(sa.func.max(Ingest.id))).scalar()), compute)


def _once_per_schedules(slot, conn, compute):
    """`compute()` once per state of the stores, hours and zones: kept until an ingest
    loads an hours or timezone file or adds a store (the hourly feed does neither)."""
    return _once_per(slot, (
        str(db.engine.url),
        conn.execute(sa.select(sa.func.max(IngestFile.id))
                     .where(IngestFile.kind.in_(("hours", "timezone")))).scalar(),
        conn.execute(sa.select(sa.func.max(Store.id))).scalar()), compute)


def _once_per(slot, key, compute):
    known_key, value = slot[0]
    if known_key != key:
        value = compute()
        slot[0] = (key, value)
    return value


_first_poll = [(None, None)]
_summary = [(None, None)]
_schedules = [(None, None)]


def first_poll_us():
    """The earliest poll [µs, UTC], or None without polls (read apart: a report is queued
    next), kept per state of the data: a trigger with `as_of` reads two rows, not millions."""
    with read_apart() as conn:
        return _once_per_data(_first_poll, conn, lambda: kept_poll_bounds(conn)[0])


class AsOfRefused(ValueError):
    """An `as_of` that is not an instant of the data: none loaded, before the first poll, or
    in the future. The message says which, in one line."""


def check_as_of(as_of_us, now_us=None):
    """`as_of_us` when a report (or a store's week) may be asked for as of it: not before
    the first poll and not after `now_us` (the server's clock when None); else
    `AsOfRefused`. One rule for the API, the pages and the command line."""
    first_us = first_poll_us()
    if first_us is None:
        raise AsOfRefused("as_of: no polls are loaded yet")
    if as_of_us < first_us:
        raise AsOfRefused(f"as_of {iso_instant(as_of_us)} is before the first poll "
                          f"({iso_instant(first_us)})")
    if now_us is None:
        now_us = datetime_us(datetime.now(timezone.utc))
    if as_of_us > now_us:
        raise AsOfRefused(f"as_of {iso_instant(as_of_us)} is in the future")
    return as_of_us


def data_summary():
    """How much data is loaded, how fresh it is, and what is missing or was rejected: kept
    per state of the data (counting a million stores' polls takes seconds). Not to be
    changed by the caller."""
    with read_apart() as conn:
        return _once_per_data(_summary, conn, _summarise)


def _summarise():
    polls, stores_with_polls = db.session.execute(
        sa.select(DataVersion.polls, DataVersion.stores_with_polls)).one()
    if polls is None or stores_with_polls is None:  # not kept: count them
        polls, stores_with_polls = db.session.execute(sa.select(
            sa.func.count(), sa.func.count(StoreStatus.store_pk.distinct()))).one()
    first_us, latest_us = kept_poll_bounds(db.session.connection())
    by_reason = _rejections_by_reason()
    stores = kept_schedule_facts(db.session.connection())
    if stores is None:  # not kept: probe every store, once per state of the schedules
        stores = _once_per_schedules(_schedules, db.session.connection(),
                                     lambda: schedule_facts(db.session.connection()))
    return {
        "stores": stores["stores"],
        "stores_with_polls": stores_with_polls,
        "polls": polls,
        "first_poll": iso_instant(first_us),
        "latest_poll": iso_instant(latest_us),
        "stores_without_business_hours": stores["stores_without_business_hours"],
        "stores_without_timezone": stores["stores_without_timezone"],
        "stores_with_unknown_timezone": stores["stores_with_unknown_timezone"],
        "ingests": db.session.execute(sa.select(sa.func.count()).select_from(Ingest)).scalar(),
        "rejected_rows": sum(by_reason.values()),
        "rejected_by_reason": by_reason,
    }


SCHEDULE_FACTS = ("stores", "stores_without_business_hours", "stores_without_timezone",
                  "stores_with_unknown_timezone")


def kept_schedule_facts(conn):
    """The schedule facts `DataVersion` keeps for the current data version (see
    `schedule_facts`), or None when they are not known without counting."""
    row = conn.execute(sa.select(*(getattr(DataVersion, name) for name in SCHEDULE_FACTS))
                       .where(DataVersion.facts_version == DataVersion.version)).one_or_none()
    if row is None or any(value is None for value in row):
        return None
    return dict(zip(SCHEDULE_FACTS, row))


def schedule_facts(conn):
    """How many stores there are, and how many lack hours, a zone or a known zone: a probe
    per store (a second at a million stores), so ingest keeps them in `DataVersion`."""
    has_hours = sa.exists().where(BusinessHours.store_pk == Store.id)
    has_zone = sa.exists().where(StoreTimezone.store_pk == Store.id)

    def count_stores(*conditions):
        return conn.execute(sa.select(sa.func.count()).select_from(Store)
                            .where(*conditions)).scalar()

    zone_names = conn.execute(sa.select(StoreTimezone.timezone_str, sa.func.count())
                              .group_by(StoreTimezone.timezone_str)).all()
    unknown_zone = 0
    if zone_names:
        _codes, _zones, unknown = resolve_zones([name for name, _count in zone_names])
        unknown_zone = sum(count for (_name, count), bad in zip(zone_names, unknown) if bad)
    return {"stores": count_stores(),
            "stores_without_business_hours": count_stores(~has_hours),
            "stores_without_timezone": count_stores(~has_zone),
            "stores_with_unknown_timezone": unknown_zone}


def _rejections_by_reason():
    """Rejected rows counted by reason, without the quoted value that some reasons carry
    ("unknown status 'x'" counts as "unknown status")."""
    kind = text_before(IngestRejection.reason, " '")
    rows = db.session.execute(sa.select(kind.label("kind"), sa.func.count())
                              .group_by(kind).order_by(sa.func.count().desc())).all()
    counts = {}
    for name, count in rows:
        counts[name.rstrip(":")] = counts.get(name.rstrip(":"), 0) + count
    return counts
