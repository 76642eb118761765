"""Read the live state back: counts per state, stores of a state, incidents (paged)."""

import sqlalchemy as sa

from app.engine.instants import iso_instant, iso_local
from app.engine.zones import DEFAULT_ZONE, resolve_zones
from app.extensions import db
from app.live.incidents import (
    NEVER_LAGGING,
    STATE_COUNTS,
    WRITE_LAG_US,
    down_without_incident,
    stores_per_state,
)
from app.live.state import DOWN, SILENT, STATES
from app.live.webhooks import incident_payload
from app.storage.database import is_postgresql
from app.storage.models import (
    OPEN_END_US,
    Incident,
    LiveMeta,
    LiveStore,
    Store,
    StoreStatus,
    StoreTimezone,
    hour_of,
)


def _reading():
    """A connection whose statements all see one state of the database: a page's counts
    and lists come from the same live update even when an ingest commits between two of
    them. PostgreSQL: one REPEATABLE READ transaction (by default each statement sees what
    was committed when it began); SQLite: the connection's one transaction (WAL, an
    explicit BEGIN: `app.storage.database`)."""
    conn = db.engine.connect()
    if is_postgresql(conn):
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def _now(conn):
    return conn.execute(sa.select(LiveMeta.now_us)).scalar()


def _state_counts(conn):
    """Stores per state: as the live state's last update kept them, or counted."""
    kept = conn.execute(sa.select(*(getattr(LiveMeta, STATE_COUNTS[s]) for s in STATES))
                        ).first()
    if kept is not None and None not in kept:
        return dict(zip(STATES, kept))
    return stores_per_state(conn)


def _latest_poll(now):
    """A live store's latest poll, as a column: its row's latest_us, or a later poll of
    the WRITE_LAG_US before `now` (a quiet store's row may lag that far behind its polls:
    `app.live.incidents._write_live`), found one step down the polls' key per hour. A down
    or silent store's row never lags: its latest_us is taken without looking (a list of
    them sorts them all, and each look reads some 25 pages of the polls when they are not
    in memory)."""
    if now is None:
        return LiveStore.latest_us
    hours = list(range(hour_of(now - WRITE_LAG_US), hour_of(now) + 1))
    later = (sa.select(sa.func.max(StoreStatus.timestamp_us))
             .where(StoreStatus.hour.in_(hours), StoreStatus.store_pk == LiveStore.store_pk,
                    StoreStatus.timestamp_us > LiveStore.latest_us)
             .correlate(LiveStore).scalar_subquery())
    return sa.case((LiveStore.state.in_(NEVER_LAGGING), LiveStore.latest_us),
                   else_=sa.func.coalesce(later, LiveStore.latest_us))


def status(limit=100):
    """`now`, stores per state, and the `limit` oldest open incidents with how many are
    open (a million stores can have tens of thousands: the rest are paged by
    `incidents`)."""
    with _reading() as conn:
        now = _now(conn)
        counts = _state_counts(conn)
        open_total = _open_count(conn)
        rows = conn.execute(_incidents().where(Incident.end_us == OPEN_END_US)
                            .order_by(Incident.start_us, Incident.id).limit(limit)).all()
    return {"now": iso_instant(now), "stores": counts,
            "open_incidents": [_incident(row, now) for row in rows], "open_total": open_total}


def counts():
    """Stores per state, and how many incidents are open."""
    with _reading() as conn:
        found = _state_counts(conn)
        open_incidents = _open_count(conn)
    return found, open_incidents


def _open_count(conn):
    return conn.execute(sa.select(sa.func.count()).where(Incident.end_us == OPEN_END_US)
                        ).scalar()


def _open_start():
    """The start of a live store's open incident (None without one), as a column."""
    return (sa.select(sa.func.min(Incident.start_us))
            .where(Incident.store_pk == LiveStore.store_pk, Incident.end_us == OPEN_END_US)
            .scalar_subquery().label("down_since"))


def _since(row):
    """When a row's state began: for a down store, its open incident's start."""
    return iso_instant(row.down_since if row.state == DOWN and row.down_since is not None
                       else row.since_us)


def _incidents():
    return (sa.select(Incident.id, Store.store_id, Incident.start_us, Incident.end_us)
            .join(Store, Store.id == Incident.store_pk))


def _incident(row, now):
    return incident_payload(row.id, row.store_id, row.start_us, row.end_us, now)


def stores(state=None, limit=100, cursor=None):
    """Stores in order of store id, `limit` at a time; `cursor` is the last id of the page
    before."""
    # Of one state: a range of live_store's index on (state, store_id). Of all: the store
    # table's index on store_id, and each store's live row by its key.
    store_id = Store.store_id if state is None else LiveStore.store_id
    with _reading() as conn:
        now = _now(conn)
        query = (sa.select(store_id.label("store_id"), LiveStore.state, LiveStore.since_us,
                           _latest_poll(now).label("latest_us"), _open_start())
                 .order_by(store_id).limit(limit + 1))
        if state is None:
            query = query.join(Store, Store.id == LiveStore.store_pk)
        else:
            query = query.where(LiveStore.state == state)
        if cursor:
            query = query.where(store_id > cursor)
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"now": iso_instant(now), "next_cursor": rows[-1].store_id if more else None,
            "stores": [{"store_id": r.store_id, "state": r.state,
                        "since": _since(r),
                        "latest_poll": iso_instant(r.latest_us)} for r in rows]}


def incidents(state=None, store_id=None, since_us=None, until_us=None, limit=100,
              cursor=None):
    """Incidents newest first (by start, then id), those overlapping ``[since_us, until_us)``
    when given; `cursor` is ``<start_us>.<id>`` of the last incident of the page before."""
    query = _incidents()
    if state == "open":
        query = query.where(Incident.end_us == OPEN_END_US)
    elif state == "closed":
        query = query.where(Incident.end_us != OPEN_END_US)
    if store_id is not None:
        query = query.where(Store.store_id == store_id)
    if since_us is not None:
        query = query.where(Incident.end_us > since_us)
    if until_us is not None:
        query = query.where(Incident.start_us < until_us)
    if cursor:
        start, _, last_id = cursor.partition(".")
        if not (start.lstrip("-").isdigit() and last_id.isdigit()):
            raise ValueError("cursor: not one this API gave")
        start, last_id = int(start), int(last_id)
        query = query.where(sa.or_(Incident.start_us < start, sa.and_(
            Incident.start_us == start, Incident.id < last_id)))
    query = query.order_by(Incident.start_us.desc(), Incident.id.desc()).limit(limit + 1)
    with _reading() as conn:
        now = _now(conn)
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"now": iso_instant(now),
            "next_cursor": f"{rows[-1].start_us}.{rows[-1].id}" if more else None,
            "incidents": [_incident(row, now) for row in rows]}


def store_state(store_id):
    """One store's state now and its kept incidents (newest first), or None."""
    with _reading() as conn:
        now = _now(conn)
        row = conn.execute(sa.select(LiveStore.state, LiveStore.since_us,
                                     _latest_poll(now).label("latest_us"))
                           .join(Store, Store.id == LiveStore.store_pk)
                           .where(Store.store_id == store_id)).first()
        if row is None:
            return None
        found = conn.execute(_incidents().where(Store.store_id == store_id)
                             .order_by(Incident.start_us.desc())).all()
    incidents_ = [_incident(r, now) for r in found]
    since = row.since_us
    if row.state == DOWN and incidents_ and incidents_[0]["state"] == "open":
        since = found[0].start_us
    return {"state": row.state, "since": iso_instant(since),
            "latest_poll": iso_instant(row.latest_us), "incidents": incidents_}


def overview(limit=20):
    """For the home page: `now`, stores per state, the stores down now (longest first: since
    when, in their local time and UTC, and how long), the silent ones (longest silent
    first) and the open incidents (oldest first), each list cut at `limit` with its total."""
    with _reading() as conn:
        now = _now(conn)
        latest = _latest_poll(now).label("latest_us")

        def listed(since):
            return (sa.select(Store.store_id, since.label("since_us"), latest,
                              StoreTimezone.timezone_str)
                    .join(Store, Store.id == LiveStore.store_pk)
                    .outerjoin(StoreTimezone, StoreTimezone.store_pk == LiveStore.store_pk))

        counts = _state_counts(conn)
        # Down since the open incident's start, or without a kept one since the state's
        # start: the first from the open incidents in order of start (an index), the
        # others apart (only when the live state's last update counted some: looking
        # for none costs a lookup per down store); the two merged, instead of computing
        # either start for every down store to sort them all.
        with_open = conn.execute(
            listed(Incident.start_us).join(Incident, Incident.store_pk == LiveStore.store_pk)
            .where(Incident.end_us == OPEN_END_US, LiveStore.state == DOWN)
            .order_by(Incident.start_us, Store.store_id).limit(limit)).all()
        without = []
        if conn.execute(sa.select(LiveMeta.stores_down_without_incident)).scalar() != 0:
            without = conn.execute(
                listed(LiveStore.since_us).where(down_without_incident())
                .order_by(LiveStore.since_us, Store.store_id).limit(limit)).all()
        down = _first_of_each_store(sorted([*with_open, *without],
                                           key=lambda r: (r.since_us, r.store_id)))[:limit]
        # A silent store's row does not lag: its latest_us orders them.
        silent = conn.execute(listed(LiveStore.since_us).where(LiveStore.state == SILENT)
                              .order_by(LiveStore.latest_us, Store.store_id)
                              .limit(limit)).all()
        open_count = _open_count(conn)
        opened = conn.execute(_incidents().where(Incident.end_us == OPEN_END_US)
                              .order_by(Incident.start_us, Incident.id).limit(limit)).all()
    return {"now": iso_instant(now), "stores": counts,
            "down": [_store_row(row, now) for row in down],
            "silent": [_store_row(row, now) for row in silent],
            "open_incidents": [_incident(row, now) for row in opened],
            "open_total": open_count}


def _first_of_each_store(rows):
    seen = set()
    return [row for row in rows if not (row.store_id in seen or seen.add(row.store_id))]


def _store_row(row, now):
    """A store of the home page's lists: since when (UTC and its local time) and how long
    before `now`, and its latest poll."""
    zones = resolve_zones([row.timezone_str or DEFAULT_ZONE])[1]
    return {"store_id": row.store_id, "since": iso_instant(row.since_us),
            "since_local": iso_local([row.since_us], zones[0].key)[0],
            "timezone": zones[0].key, "minutes": (now - row.since_us) / 60e6,
            "latest_poll": iso_instant(row.latest_us),
            "latest_poll_local": iso_local([row.latest_us], zones[0].key)[0],
            "silent_minutes": (now - row.latest_us) / 60e6}


def store_now(store_id):
    """One store's state now (`state`, `since`, `latest_poll`), or None."""
    found = stores_of([store_id])
    return found.get(store_id)


def stores_of(store_ids):
    """The state now of these stores, by store id (those with polls)."""
    with _reading() as conn:
        now = _now(conn)
        rows = conn.execute(sa.select(Store.store_id, LiveStore.state, LiveStore.since_us,
                                      _latest_poll(now).label("latest_us"),
                                      _open_start())
                            .join(Store, Store.id == LiveStore.store_pk)
                            .where(Store.store_id.in_(list(store_ids)))).all()
    return {r.store_id: {"state": r.state, "since": _since(r),
                         "latest_poll": iso_instant(r.latest_us)} for r in rows}
