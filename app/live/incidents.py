"""Keep the live state and the incidents up to date, in the ingest's own transaction.

After every ingest (`on_polls_loaded`, connected to `app.ingest.load.polls_loaded`), the
stores the ingest can change are brought up to date; the differences from what is kept
become inserts, updates and deletes, and webhook events (`app.live.webhooks.enqueue`).

Which stores: those with new polls or new hours or zone, and, when `now` moved, those whose
business hours began or ended since (`live_store.next_us`), that fell silent, or that are
down in business time without a kept open incident (their incident begins at the old
`now`). Any other store keeps its state and incidents.

How, from the cheapest:

- Quiet stores. Business time is the same from the old `now` to `next_us`, so a store
  whose new polls all lie after the old `now`, with the new `now` before its `next_us`,
  is in business time for all of them or for none. When it is closed, they are not
  observations; when it is open and they all say what its latest observation said (with a
  kept open incident when that was inactive), the status runs on unchanged and nothing
  about its incidents changes: only its state row does (latest poll, latest observation,
  up, down or silent). So for nearly every store of an hourly feed. A store that only
  fell silent is quiet too.
- Stores whose polls follow their latest observation in business time `L`: a poll later
  than `L` changes nothing before `L`, so they are computed from `L` and their new polls
  only, and an incident running through `L` keeps its kept start (a store active from `L`
  on has no incident there to read).
- A store with a poll at or before `L` (late or re-sent), or new hours or zone, is computed
  again from all its polls, from where the data begins (the earliest poll); the first
  computation of a database, or a poll earlier than all data, computes every store.

Only what changed is written, and a quiet store's new poll alone does not make its row
written at once: an up or closed store's latest_us and counted_us may lag its polls by up
to WRITE_LAG_US (a down or silent store's never lag), and whoever reads a row completes it
with the store's polls since (`_write_live`, `_read_live`, `app.live.read`).

All polls come from `stored_polls` when ingest sends them (every poll after the ingest,
known without reading), else from the database (a join on the stores' keys, as CSV text
the database writes in one value; PostgreSQL takes keys as array parameters, SQLite from a
temporary table). Every store's hours and zone are kept per process (as the ingest sends
them in `stored_schedules`, else read from the columnar copy of the data when there is
one, else from the database) until an hours or time-zone file is ingested; so are the
live rows, as of the ingest or removal that wrote them (its `ingest` record): a process
whose rows are not those of the latest one reads them all again. Incidents that ended
more than `INCIDENT_DAYS` before `now` are dropped.
"""

import io
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from app.ingest import bulk
from app.live import state as live_state
from app.live import webhooks
from app.storage import poll_parts, snapshot, store_snapshot
from app.storage.arrow_arrays import as_bool, as_int64, one_array
from app.storage.database import is_postgresql
from app.storage.models import (
    OPEN_END_US,
    Incident,
    LiveMeta,
    LiveStore,
    Store,
    hour_of,
)
from app.storage.poll_order import distinct_sorted
from app.storage.poll_parts import PollParts

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
NO_INSTANT = live_state.NO_INSTANT
# The column of `LiveMeta` that keeps how many stores are in each state.
STATE_COUNTS = {state: f"stores_{state}" for state in live_state.STATES}
# States as their positions in STATES (the rows kept per process hold these).
UP, DOWN, CLOSED, SILENT = (live_state.STATES.index(s) for s in (
    live_state.UP, live_state.DOWN, live_state.CLOSED, live_state.SILENT))
# The states whose rows never lag behind their store's polls (see `_write_live`): the
# readers list such stores by their rows alone, without looking for later polls.
NEVER_LAGGING = (live_state.DOWN, live_state.SILENT)
_NEVER_LAGGING_CODES = [live_state.STATES.index(s) for s in NEVER_LAGGING]


def on_polls_loaded(app, conn, polls, rescheduled, stored_polls=None, stored_schedules=None,
                    **_more):
    """The ingest hook: `polls` (store_pk, timestamp_us, active arrays) were added and the
    stores `rescheduled` got new hours or a new zone, in the transaction of `conn`;
    `stored_polls`, when not None, is every poll now in the database
    (`app.storage.poll_parts.PollParts`), and `stored_schedules` the hours and zones tables
    now in it (Arrow tables keyed "hours" and "zones")."""
    from app.storage import columnar

    update(conn, polls, rescheduled, settings_of(app.config),
           app.extensions.setdefault("live_kept", {}), stored_polls=stored_polls,
           copies=columnar.for_current_app(), stored_schedules=stored_schedules)


def on_polls_removed(app, conn):
    """The removal hook (`app.ingest.remove.polls_removed`): polls were removed in `conn`'s
    transaction, so `now`, the data's start and any store may have changed. Every store is
    computed again from its polls, and stores left without a poll lose their state and their
    incidents (events say so)."""
    kept = app.extensions.setdefault("live_kept", {})
    conn.execute(sa.delete(LiveMeta))  # computed again from whole columns
    nothing = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
    polled = update(conn, nothing, np.zeros(0, np.int64), settings_of(app.config), kept)
    kept.pop("rows", None)  # some are deleted below
    rows = np.asarray(conn.execute(sa.select(LiveStore.store_pk)).scalars().all(),
                      dtype=np.int64)
    gone = np.setdiff1d(rows, polled)
    if len(gone) == 0:
        return
    kept_incidents = _kept_incidents(conn, gone, np.full(len(gone), np.iinfo(np.int64).min))
    applied = _apply(conn, diff(kept_incidents, pd.DataFrame({
        "store_pk": np.zeros(0, np.int64), "start_us": np.zeros(0, np.int64),
        "end_us": np.zeros(0, np.int64)})))
    conn.execute(sa.delete(LiveStore).where(LiveStore.store_pk.in_([int(p) for p in gone])))
    conn.execute(sa.update(LiveMeta).values(
        **_state_counts(stores_per_state(conn)),
        stores_down_without_incident=count_down_without_incident(conn)))
    now = conn.execute(sa.select(LiveMeta.now_us)).scalar()
    webhooks.enqueue(conn, applied, now if now is not None else webhooks.now_us())


def stores_per_state(conn):
    """How many live stores are in each state, counted in the table (every state, 0 for
    none)."""
    counted = dict(conn.execute(sa.select(LiveStore.state, sa.func.count())
                                .group_by(LiveStore.state)).all())
    return {state: counted.get(state, 0) for state in live_state.STATES}


def down_without_incident():
    """The condition on a `live_store` row: down, without an open incident."""
    has_open = sa.exists().where(Incident.store_pk == LiveStore.store_pk,
                                 Incident.end_us == OPEN_END_US)
    return sa.and_(LiveStore.state == live_state.DOWN, ~has_open)


def count_down_without_incident(conn):
    """How many live stores are down without an open incident, counted in the tables."""
    return conn.execute(sa.select(sa.func.count()).select_from(LiveStore)
                        .where(down_without_incident())).scalar_one()


def _state_counts(by_state):
    """`LiveMeta`'s count columns from stores per state (states without stores: 0)."""
    return {column: int(by_state.get(state, 0)) for state, column in STATE_COUNTS.items()}


def settings_of(config):
    return {"silent_after_us": int(config["SILENT_AFTER_MINUTES"] * MINUTE_US),
            "incident_days": float(config["INCIDENT_DAYS"])}


@dataclass(frozen=True)
class LiveRows:
    """Live rows as arrays sorted by `pk` (store_pk): `state` as its position in STATES,
    `counted_us` NO_INSTANT for a store without an observation in business time (then
    `counted_active` is False). The values are the exact ones; the table's latest_us and
    counted_us may lag (`written_*`, see `_write_live`)."""

    pk: np.ndarray
    state: np.ndarray
    since_us: np.ndarray
    latest_us: np.ndarray
    counted_us: np.ndarray
    counted_active: np.ndarray
    next_us: np.ndarray
    # What the table holds of latest_us and counted_us (NO_INSTANT: no row in the table).
    written_latest_us: np.ndarray
    written_counted_us: np.ndarray

    @classmethod
    def of(cls, **columns):
        """Rows from columns in any order of `pk`."""
        order = np.argsort(columns["pk"], kind="stable")
        return cls(**{f.name: np.asarray(columns[f.name])[order] for f in fields(cls)})

    def __len__(self):
        return len(self.pk)

    def find(self, pks):
        """Positions of the stores `pks` (sorted or not); -1 for those without a row."""
        position = np.searchsorted(self.pk, pks)
        found = position < len(self.pk)
        found[found] = self.pk[position[found]] == pks[found]
        return np.where(found, position, -1)

    def take(self, positions):
        return LiveRows(**{f.name: getattr(self, f.name)[positions] for f in fields(self)})

    def at(self, pks):
        """Whether each store of `pks` has a row, and the rows aligned with `pks` (zeros
        where there is none)."""
        position = self.find(pks)
        there = position >= 0
        if len(self) == 0:
            return there, LiveRows(**{f.name: np.zeros(len(pks), getattr(self, f.name).dtype)
                                      for f in fields(self)})
        return there, self.take(np.maximum(position, 0))

    def replaced(self, other, position=None):
        """These rows with `other`'s (any order; `position`: `self.find(other.pk)` when
        known) in place of or beside theirs."""
        position = self.find(other.pk) if position is None else position
        there = position >= 0
        columns = {f.name: getattr(self, f.name).copy() for f in fields(self)}
        for name, column in columns.items():
            column[position[there]] = getattr(other, name)[there]
        if there.all():
            return LiveRows(**columns)
        added = other.take(np.flatnonzero(~there))
        return LiveRows.of(**{name: np.concatenate([column, getattr(added, name)])
                              for name, column in columns.items()})


def update(conn, polls, rescheduled, settings, kept=None, stored_polls=None, copies=None,
           stored_schedules=None):
    """Bring the live tables up to date with the data in `conn`'s transaction, that of an
    ingest or a removal (after its `ingest` record is written).

    `kept`: a dict this process keeps between ingests (hours, zones and live rows).
    `stored_polls`: every poll in the database, when known without reading it (`PollParts`).
    `copies`: the database's columnar copies (`app.storage.columnar.Copies`), if any.
    `stored_schedules`: the hours and zones tables in the database, when known without
    reading them (Arrow tables keyed "hours" and "zones").
    Returns the stores with polls when every store was computed again (else None)."""
    kept = {} if kept is None else kept
    new_pk, new_us, new_active = _sorted_polls(*polls)
    rescheduled = np.unique(np.asarray(rescheduled, dtype=np.int64))
    this_record, previous_record = _ingest_records(conn)
    cached = kept.pop("rows", None)  # put back once this update is done
    meta = conn.execute(sa.select(LiveMeta.now_us, LiveMeta.first_us)).first()
    first_time = meta is None or meta.now_us is None
    live = None
    if first_time:
        bounds = _poll_bounds(conn, stored_polls)
        if bounds is None:
            return np.zeros(0, dtype=np.int64)
        first_poll, now = bounds
    else:
        before = (int(meta.now_us), int(meta.first_us))
        if cached is not None and previous_record is not None \
                and cached[:2] == (previous_record, before):
            live = cached[2]
        if len(new_pk) == 0 and len(rescheduled) == 0:  # nothing changes
            if live is not None and this_record is not None:
                kept["rows"] = (this_record, before, live)
            return None
        first_poll, now = before[1], before[0]
        if len(new_us):
            first_poll, now = min(first_poll, int(new_us.min())), max(now, int(new_us.max()))
    live_from_table = None  # the old now, when the rows were read back
    if live is None:
        live = _read_live(conn, None if first_time else int(meta.now_us), stored_polls)
        live_from_table = None if first_time else int(meta.now_us)
    # Before a store's first observation its status is that observation's, back to where
    # the data begins: the earliest poll of all stores. Not the week window's start, which
    # moves with every ingest while the data is younger than a week.
    origin = first_poll
    whole = first_time or origin != int(meta.first_us)
    silent_after = settings["silent_after_us"]
    new = _per_store(new_pk, new_us, new_active)

    if whole:
        polls_of = _PollSource(conn, stored_polls)
        pks = polls_of.all_stores()
        quiet = live.take(np.zeros(0, dtype=np.int64))
        hours, zones = _schedules(conn, kept, None, copies, rescheduled, stored_schedules)
    else:
        open_now = _stores_with_open_incident(conn)
        quiet, pks = _quiet(live, new, rescheduled, open_now, int(meta.now_us), now,
                            silent_after)
        polls_of = _PollSource(conn, stored_polls)
        if len(pks):
            hours, zones = _schedules(conn, kept, pks, copies, rescheduled, stored_schedules)
    computed = None
    if len(pks):
        computed, applied = _recompute(conn, pks, live, new, rescheduled, polls_of, whole,
                                       origin, now, hours, zones, settings, live_from_table)
    else:
        applied = diff(_no_incidents(with_id=True), _no_incidents())
    changed = quiet if computed is None else _concat_rows(quiet, computed)
    rows = _write_live(conn, live, changed, pks, now)
    conn.execute(sa.delete(LiveMeta))
    per_state = np.bincount(rows.state, minlength=len(live_state.STATES))
    conn.execute(sa.insert(LiveMeta).values(
        id=1, now_us=now, first_us=first_poll,
        **_state_counts(dict(zip(live_state.STATES, per_state))),
        stores_down_without_incident=count_down_without_incident(conn)))
    horizon = now - int(settings["incident_days"] * DAY_US)
    conn.execute(sa.delete(Incident).where(Incident.end_us < horizon))
    if this_record is not None:
        kept["rows"] = (this_record, (now, first_poll), rows)
    # Stores that became silent (a store seen for the first time is not said to).
    position = live.find(changed.pk)
    silent = (changed.state == SILENT) & (position >= 0)
    silent[silent] = live.state[position[silent]] != SILENT
    webhooks.enqueue(conn, applied, now, became_silent=_silent_stores(
        conn, changed.pk[silent], changed.latest_us[silent]))
    return pks if whole else None


def _quiet(live, new, rescheduled, open_now, before, now, silent_after):
    """The quiet stores' new rows (see the module's docstring), and the stores to compute
    again: the others with new polls, the rescheduled, and those that may have changed
    without a poll (business time began or ended, or down without a kept open incident)."""
    has_row, old = live.at(new.pk)
    observed = old.counted_us != NO_INSTANT
    open_incident = _isin_sorted(new.pk, open_now)
    steady = has_row & ~_isin_sorted(new.pk, rescheduled) & (new.first_us > before) \
        & (now < old.next_us)
    same_status = observed & ((new.all_active & old.counted_active)
                              | (new.none_active & ~old.counted_active & open_incident))
    polled_quiet = steady & ((old.state == CLOSED) | ((old.state != CLOSED) & same_status))

    # Stores without new polls.
    without = ~_isin_sorted(live.pk, new.pk) & ~_isin_sorted(live.pk, rescheduled)
    down_open = (live.state != CLOSED) & (live.counted_us != NO_INSTANT) & ~live.counted_active
    due = without & ((live.next_us <= now)
                     | (down_open & ~_isin_sorted(live.pk, open_now)))
    fell_silent = without & ~due & ((live.state == UP) | (live.state == DOWN)) \
        & (live.latest_us < now - silent_after)

    # Quiet rows: a closed store's polls are outside business time; an open one's are its
    # latest observation.
    q = np.flatnonzero(polled_quiet)
    rows = old.take(q)
    latest = np.maximum(rows.latest_us, new.last_us[q])
    is_open = rows.state != CLOSED
    counted = np.where(is_open, new.last_us[q], rows.counted_us)
    state = np.where(~is_open, CLOSED, np.where(
        now - latest > silent_after, SILENT, np.where(rows.counted_active, UP, DOWN)))
    polled = replace(rows, state=state.astype(np.int8),
                     since_us=np.where(state == rows.state, rows.since_us, now),
                     latest_us=latest, counted_us=counted)
    silent = live.take(np.flatnonzero(fell_silent))
    silent = replace(silent, state=np.full(len(silent), SILENT, dtype=np.int8),
                     since_us=np.full(len(silent), now, dtype=np.int64))
    quiet = _concat_rows(polled, silent)
    pks = np.union1d(np.union1d(new.pk[~polled_quiet], live.pk[due]),
                     rescheduled[_isin_sorted(rescheduled, live.pk)])
    return quiet, pks


def _recompute(conn, pks, live, new, rescheduled, polls_of, whole, origin, now, hours, zones,
               settings, live_from_table=None):
    """Compute the stores `pks` again (from `L` and their new polls, or from all their
    polls), write their incidents' changes; return their new rows and the changes."""
    silent_after = settings["silent_after_us"]
    has_row, old = live.at(pks)
    old_counted = np.where(has_row, old.counted_us, NO_INSTANT)
    polled = _isin_sorted(pks, new.pk)
    first_new = np.full(len(pks), np.iinfo(np.int64).max)
    at = np.searchsorted(new.pk, pks[polled])
    first_new[polled] = new.first_us[at]
    if whole:
        slow = np.ones(len(pks), dtype=bool)
    else:
        late = polled & (old_counted != NO_INSTANT) & (first_new <= old_counted)
        slow = late | _isin_sorted(pks, rescheduled)
        if live_from_table is not None:
            # Rows read back were completed with the polls up to the old now (`_read_live`),
            # which may hold this ingest's own: a store with a poll up to then, all of them.
            slow |= polled & (first_new <= live_from_table)

    since = np.full(len(pks), origin, dtype=np.int64)
    parts = []
    # Slow stores: all their polls, incidents from the origin.
    if slow.any():
        parts.append(polls_of.of_stores(pks[slow]))
    fast = ~slow
    # Fast stores: their latest observation `L`, their new polls, and for a store with
    # neither its latest poll (outside business time, as all its polls are): it places the
    # store on the axis, without being an observation.
    has_l = fast & has_row & (old_counted != NO_INSTANT)
    bare = fast & ~has_l & ~polled
    if fast.any():
        take = _isin_sorted(new.store, pks[fast])
        parts += [(pks[has_l], old_counted[has_l], old.counted_active[has_l]),
                  (new.store[take], new.us[take], new.active[take]),
                  (pks[bare], old.latest_us[bare], np.zeros(int(bare.sum()), dtype=bool))]
        since = np.where(has_l, old_counted, np.where(bare, old.latest_us, since))
    # Copied only when there are several parts: at a first ingest every poll is one.
    store, instant, active = _by_store_and_instant(
        *(parts[0][i] if len(parts) == 1 else np.concatenate([part[i] for part in parts])
          for i in range(3)))
    result = live_state.compute(
        pd.DataFrame({"store_id": store, "timestamp_us": instant, "active": active},
                     copy=False),
        hours, zones, now, pd.DataFrame({"store_id": pks, "since_us": since}))

    # The engine's code of each store of `pks`.
    code_of = np.argsort(result.store_ids.astype(np.int64), kind="stable")
    if not np.array_equal(result.store_ids.astype(np.int64)[code_of], pks):
        raise RuntimeError("live state: the stores computed are not those asked for")
    fresh_store = result.store_ids.astype(np.int64)[result.incident_store]
    fresh_start = result.incident_start.astype(np.int64)
    fresh_end = np.where(result.incident_open, OPEN_END_US, result.incident_end)
    # A fast store whose latest observation and new polls are all active has no incident
    # from `L` on, fresh or kept (one kept before ends at the midpoint before `L`).
    at_new = np.minimum(np.searchsorted(new.pk, pks), max(len(new.pk) - 1, 0))
    new_active = ~polled | (new.all_active[at_new] if len(new.pk) else True)
    active_on = has_l & old.counted_active & new_active
    kept = _kept_incidents(conn, pks[~active_on], since[~active_on])
    # An incident running through a store's latest observation before this ingest keeps the
    # start it had: only the part from that observation on was computed again. (Kept
    # incidents are disjoint: one at most runs through it.)
    through = (kept["start_us"] < kept["since_us"]) & _isin_sorted(kept["store_pk"], pks[has_l])
    through_store, first = np.unique(kept["store_pk"][through], return_index=True)
    through_start, through_end, through_since = (
        kept[c][through][first] for c in ("start_us", "end_us", "since_us"))
    if len(through_store):
        at_store = np.minimum(np.searchsorted(through_store, fresh_store),
                              len(through_store) - 1)
        rejoin = (through_store[at_store] == fresh_store) \
            & (fresh_start == through_since[at_store])
        fresh_start[rejoin] = through_start[at_store[rejoin]]
        # A store whose latest observation is `now` itself had nothing after it to compute:
        # the incident through it stays as it is.
        unchanged = through_since == now
        fresh_store, fresh_start, fresh_end = (
            np.concatenate([column, extra[unchanged]]) for column, extra in (
                (fresh_store, through_store), (fresh_start, through_start),
                (fresh_end, through_end)))
    horizon = now - int(settings["incident_days"] * DAY_US)
    recent = fresh_end >= horizon
    fresh = {"store_pk": fresh_store[recent], "start_us": fresh_start[recent],
             "end_us": fresh_end[recent]}
    recent = kept["end_us"] >= horizon
    applied = _apply(conn, diff({c: kept[c][recent] for c in ("id", "store_pk", "start_us",
                                                              "end_us")}, fresh))

    # The stores' rows, in the order of `pks`.
    counted_us = result.counted_us[code_of]
    latest = np.where(has_row, old.latest_us, np.iinfo(np.int64).min)
    if polled.any():
        latest[polled] = np.maximum(latest[polled], new.last_us[at])
    if slow.any():  # a slow store's latest poll from its polls read
        ends = np.flatnonzero(np.append(store[1:] != store[:-1], True))
        slow_latest = np.full(len(pks), np.iinfo(np.int64).min)
        slow_latest[np.searchsorted(pks, store[ends])] = instant[ends]
        latest = np.where(slow, slow_latest, latest)
    states = _codes(live_state.states(result.open_now[code_of], counted_us,
                                      result.counted_active[code_of], latest, now,
                                      silent_after))
    same = has_row & (old.state == states)
    has = counted_us != NO_INSTANT
    rows = LiveRows(pk=pks, state=states, since_us=np.where(same, old.since_us, now),
                    latest_us=latest, counted_us=counted_us,
                    counted_active=has & result.counted_active[code_of],
                    next_us=result.next_change_us[code_of],
                    written_latest_us=np.where(has_row, old.written_latest_us, NO_INSTANT),
                    written_counted_us=np.where(has_row, old.written_counted_us, NO_INSTANT))
    return rows, applied


class _PollSource:
    """Polls of some or all stores, as the engine's frame keyed by store_pk: from the polls
    ingest sent (every poll after it, as `PollParts`) or from the database."""

    def __init__(self, conn, stored_polls):
        self.conn = conn
        self.stored = stored_polls

    def all_stores(self):
        """Every store with a poll (sorted)."""
        if self.stored is None:
            self._read_all()
        return np.unique(np.concatenate([np.zeros(0, np.int64)] + [
            distinct_sorted(poll_parts.columns(part)[0]) for part in self.stored.parts]))

    def _read_all(self):
        # Read back sorted by store and instant: one part.
        self.stored = PollParts.of(snapshot.read_tables(self.conn, ("polls",))["polls"])

    def of_stores(self, pks):
        """The polls of the stores `pks` (sorted), sorted by store and instant."""
        if self.stored is None:
            return self._read_stores(pks)
        return self.stored.of_stores(pks)

    def _read_stores(self, pks):
        # The table is keyed by hour, then store: one step down the key per store and hour.
        hours = ", ".join(str(hour) for hour in store_snapshot.hours_with_polls(self.conn))
        if not hours:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
        keys, params = _keys(self.conn, "live_slow", {"store_pk": pks})
        store, instant, active = _read_ints(
            self.conn, ["p.store_pk", "p.timestamp_us", "CAST(p.active AS INTEGER)"],
            f"{keys} JOIN store_status p ON p.hour IN ({hours}) AND p.store_pk = k.store_pk",
            params)
        return _by_store_and_instant(store, instant, active != 0)


@dataclass(frozen=True)
class _NewPolls:
    """This ingest's polls sorted by store and instant (`store`, `us`, `active`), and per
    store (`pk`, sorted): its first and last new poll, whether all or none are active."""

    store: np.ndarray
    us: np.ndarray
    active: np.ndarray
    pk: np.ndarray
    first_us: np.ndarray
    last_us: np.ndarray
    all_active: np.ndarray
    none_active: np.ndarray


def _per_store(store, us, active):
    if len(store) == 0:
        none = np.zeros(0, dtype=np.int64)
        return _NewPolls(store, us, active, none, none, none, none.astype(bool),
                         none.astype(bool))
    starts = np.flatnonzero(np.append(True, store[1:] != store[:-1]))
    ends = np.append(starts[1:], len(store)) - 1
    count = ends - starts + 1
    actives = np.add.reduceat(active.astype(np.int64), starts)
    return _NewPolls(store=store, us=us, active=active, pk=store[starts], first_us=us[starts],
                     last_us=us[ends], all_active=actives == count, none_active=actives == 0)


def _sorted_polls(store, us, active):
    """The polls as int64, int64 and bool arrays, sorted by store and instant."""
    store, us = (np.asarray(c).astype(np.int64, copy=False) for c in (store, us))
    return _by_store_and_instant(store, us, np.asarray(active).astype(bool, copy=False))


def _by_store_and_instant(store, us, active):
    if len(store) < 2:
        return store, us, active
    rising = (store[1:] > store[:-1]) | ((store[1:] == store[:-1]) & (us[1:] >= us[:-1]))
    if rising.all():
        return store, us, active
    first = int(us.min())
    span = int(us.max()) - first + 1
    if (int(store.max()) + 1) * span < 2**62 and store.min() >= 0:  # one int64 key
        order = np.argsort(store * span + (us - first), kind="stable")
    else:
        order = np.lexsort((us, store))
    return store[order], us[order], active[order]


def _isin_sorted(values, sorted_set):
    """`np.isin` for a sorted array of distinct values: one binary search each."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    position = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[position] == values


def _column(column):
    """An Arrow column as int64, or bool for `active` (without a copy when it is one chunk
    of that type, as the columnar copy's are)."""
    array = one_array(column)
    if pa.types.is_boolean(array.type) or array.type == pa.uint8():
        return as_bool(array)
    return as_int64(array)


def _codes(states):
    """State names as their positions in STATES."""
    names = np.array(live_state.STATES)
    order = np.argsort(names)
    return order[np.searchsorted(names, states, sorter=order)].astype(np.int8)


def _concat_rows(a, b):
    """Rows of distinct stores, one set after the other (not sorted: changed rows)."""
    if len(b) == 0:
        return a
    if len(a) == 0:
        return b
    return LiveRows(**{f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)])
                       for f in fields(LiveRows)})


def _no_incidents(with_id=False):
    columns = (["id"] if with_id else []) + ["store_pk", "start_us", "end_us"]
    return pd.DataFrame({c: np.zeros(0, np.int64) for c in columns})


def _ingest_records(conn):
    """The `ingest` record of this transaction's ingest or removal, and the one before
    (None for none): the live rows a process keeps are those the record's update wrote."""
    rows = conn.execute(sa.text("SELECT id, fingerprint, created_at FROM ingest "
                                "ORDER BY id DESC LIMIT 2")).all()
    records = [tuple(row) for row in rows] + [None, None]
    return records[0], records[1]


def _poll_bounds(conn, stored_polls):
    """The earliest and latest poll of all, or None without polls."""
    if stored_polls is not None:
        return stored_polls.bounds()
    first, last = store_snapshot.poll_bounds(conn)
    return None if first is None else (int(first), int(last))


def diff(kept, fresh):
    """What changes from the kept incidents to the fresh ones of the same stores.

    Both are frames (or dicts of arrays) of ``store_pk, start_us, end_us`` (kept also
    ``id``). A kept incident
    belongs to the first fresh one of its store that ends after it starts, when they
    overlap; a fresh one takes the id of the earliest kept incident that belongs to it (so a
    split keeps the id on its first part, a merge on the earlier one). Returns a frame with
    ``kind`` opened, closed, updated or removed, and ``id`` (-1 for opened), ``store_pk``,
    ``start_us``, ``end_us`` (the kept values for removed), ``old_end_us`` (-1 for opened).
    """
    k_id, k_store, k_start, k_end = _by_store_and_start(kept, with_id=True)
    f_store, f_start, f_end = _by_store_and_start(fresh)
    owner = np.full(len(k_store), -1, dtype=np.int64)
    if len(k_store) and len(f_store):
        # Instants and stores as their ranks, so that (store, instant) is one int64 key. A
        # store's fresh incidents are disjoint: sorted by start, they are sorted by end.
        instants = np.unique(np.concatenate([k_start, f_end]))
        stores = np.unique(np.concatenate([k_store, f_store]))
        width = len(instants) + 1
        f_key = np.searchsorted(stores, f_store) * width + np.searchsorted(instants, f_end)
        k_key = np.searchsorted(stores, k_store) * width + np.searchsorted(instants, k_start)
        first = np.searchsorted(f_key, k_key, side="right")  # ends after the start
        found = first < len(f_store)
        at = np.minimum(first, len(f_store) - 1)
        found &= (f_store[at] == k_store) & (f_start[at] < k_end)
        owner[found] = first[found]
    # Kept incidents are sorted by start within a store: the first of an owner keeps.
    keeper = np.zeros(len(owner), dtype=bool)
    owners, earliest = np.unique(owner, return_index=True)
    keeper[earliest[owners >= 0]] = True
    f_id = np.full(len(f_store), -1, dtype=np.int64)
    old_start = np.full(len(f_store), -1, dtype=np.int64)
    old_end = np.full(len(f_store), -1, dtype=np.int64)
    slots = owner[keeper]
    f_id[slots], old_start[slots], old_end[slots] = k_id[keeper], k_start[keeper], k_end[keeper]
    has_id = f_id >= 0
    moved = has_id & ((old_start != f_start) | (old_end != f_end))
    closed = moved & (old_end == OPEN_END_US) & (f_end != OPEN_END_US)
    out = ~has_id | moved
    gone = ~keeper
    return pd.DataFrame({
        "kind": np.concatenate([np.where(~has_id, "opened", np.where(closed, "closed",
                                                                     "updated"))[out],
                                np.full(int(gone.sum()), "removed")]).astype(object),
        "id": np.concatenate([f_id[out], k_id[gone]]),
        "store_pk": np.concatenate([f_store[out], k_store[gone]]),
        "start_us": np.concatenate([f_start[out], k_start[gone]]),
        "end_us": np.concatenate([f_end[out], k_end[gone]]),
        "old_end_us": np.concatenate([old_end[out], k_end[gone]])})


def _by_store_and_start(frame, with_id=False):
    """Columns of incidents (a frame or a dict of arrays) as int64 arrays, sorted by store,
    then start."""
    names = (["id"] if with_id else []) + ["store_pk", "start_us", "end_us"]
    columns = [np.asarray(frame[name], dtype=np.int64) for name in names]
    order = np.lexsort((columns[-2], columns[-3]))
    return tuple(column[order] for column in columns)


def _apply(conn, changes):
    """Write the changes; return them with the ids of the inserted incidents."""
    if len(changes) == 0:
        return changes
    changes = changes.copy()
    kind = changes["kind"].to_numpy()
    gone = {"id": changes["id"].to_numpy(dtype=np.int64)[kind == "removed"]}
    moved = (kind == "closed") | (kind == "updated")
    moved = {c: changes[c].to_numpy(dtype=np.int64)[moved] for c in ("id", "start_us", "end_us")}
    opened = kind == "opened"
    new = {c: changes[c].to_numpy(dtype=np.int64)[opened]
           for c in ("store_pk", "start_us", "end_us")}
    if is_postgresql(conn):
        _apply_postgresql(conn, gone, moved, new)
        ids, store, start = new["id"], new["store_pk"], new["start_us"]
    else:
        last_id = _apply_sqlite(conn, gone, moved, new)
        if len(new["store_pk"]):
            ids, store, start = _read_ints(conn, ["id", "store_pk", "start_us"],
                                           f"incident WHERE id > {int(last_id)}")
    if opened.any():
        # The rows just inserted, and only they: matched by store and start (an inserted
        # incident is the only one of its store that starts there).
        written = np.lexsort((start, store))
        inserted = np.lexsort((new["start_us"], new["store_pk"]))
        if not (np.array_equal(store[written], new["store_pk"][inserted])
                and np.array_equal(start[written], new["start_us"][inserted])):
            raise RuntimeError("live state: the incidents inserted were not found")
        found = np.empty(len(ids), dtype=np.int64)
        found[inserted] = ids[written]
        changes.loc[opened, "id"] = found
    return changes


def _apply_postgresql(conn, gone, moved, new):
    """Each kind of change in one statement, its rows as array parameters (many new
    incidents by COPY); the inserted incidents' ids come back (`new["id"]`, with the store
    and start they were given, in any order)."""
    if len(gone["id"]):
        conn.exec_driver_sql("DELETE FROM incident WHERE id = ANY(CAST(%(id)s AS bigint[]))",
                             {"id": gone["id"].tolist()})
    if len(moved["id"]):
        keys, params = _keys(conn, "live_moved", moved, alias="m")
        conn.exec_driver_sql("UPDATE incident SET start_us = m.start_us, end_us = m.end_us "
                             f"FROM {keys} WHERE incident.id = m.id", params)
    new["id"] = np.zeros(0, dtype=np.int64)
    if len(new["store_pk"]) > MANY_ROWS:  # COPY, then read the new rows back
        last_id = conn.execute(sa.select(sa.func.max(Incident.id))).scalar() or 0
        bulk.insert_rows(conn, "incident", ["store_pk", "start_us", "end_us"],
                         [new[c] for c in ("store_pk", "start_us", "end_us")])
        new["id"], new["store_pk"], new["start_us"] = _read_ints(
            conn, ["id", "store_pk", "start_us"], f"incident WHERE id > {int(last_id)}")
    elif len(new["store_pk"]):
        keys, params = _keys(conn, "live_opened", new, alias="n")
        returned = conn.exec_driver_sql(
            "INSERT INTO incident (store_pk, start_us, end_us) SELECT n.store_pk, n.start_us, "
            f"n.end_us FROM {keys} RETURNING id, store_pk, start_us", params).all()
        new["id"], new["store_pk"], new["start_us"] = (
            np.array([row[i] for row in returned], dtype=np.int64) for i in range(3))


def _apply_sqlite(conn, gone, moved, new):
    """Each kind of change row by row (few rows), or through a temporary table; returns the
    largest incident id before the inserted ones."""
    if len(gone["id"]) > MANY_ROWS:
        _stage(conn, "live_gone", gone)
        conn.exec_driver_sql("DELETE FROM incident WHERE id IN (SELECT id FROM live_gone)")
    elif len(gone["id"]):
        conn.exec_driver_sql("DELETE FROM incident WHERE id = ?", _rows(gone.values()))
    if len(moved["id"]) > MANY_ROWS:
        _stage(conn, "live_moved", moved)
        conn.exec_driver_sql(
            "UPDATE incident SET start_us = m.start_us, end_us = m.end_us FROM live_moved m "
            "WHERE incident.id = m.id")
    elif len(moved["id"]):
        conn.exec_driver_sql("UPDATE incident SET start_us = ?, end_us = ? WHERE id = ?",
                             _rows([moved["start_us"], moved["end_us"], moved["id"]]))
    last_id = conn.execute(sa.select(sa.func.max(Incident.id))).scalar() or 0
    if len(new["store_pk"]) > MANY_ROWS:
        bulk.insert_rows(conn, "incident", list(new), list(new.values()))
    elif len(new["store_pk"]):
        conn.exec_driver_sql("INSERT INTO incident (store_pk, start_us, end_us) VALUES "
                             "(?, ?, ?)", _rows(new.values()))
    return last_id


# Up to this many rows go to the database in one executemany; more through a temporary
# table (PostgreSQL: COPY; SQLite: as `app.ingest.bulk` stages rows).
MANY_ROWS = 2_000


def _rows(columns):
    """Parallel integer columns as a list of row tuples, for executemany."""
    return list(zip(*(np.asarray(column).tolist() for column in columns)))


def _stage(conn, name, columns):
    """A temporary table `name` of these integer columns (a dict of arrays), for joins in
    `conn`'s transaction. (No index: each join reads it whole, and looks rows up in the
    other table's index.)"""
    names = list(columns)
    if is_postgresql(conn):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{name}")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ("
                             + ", ".join(f"{c} BIGINT" for c in names) + ") ON COMMIT DROP")
    else:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ("
                             + ", ".join(f"{c} INTEGER" for c in names) + ")")
        if len(columns[names[0]]) == 0:
            return
        if len(columns[names[0]]) <= bulk.STAGE_FILE_ROWS:  # straight in, not staged twice
            conn.exec_driver_sql(f"INSERT INTO temp.{name} VALUES ("
                                 + ", ".join("?" * len(names)) + ")",
                                 _rows(columns.values()))
            return
    bulk.insert_rows(conn, name, names, [np.asarray(columns[c]) for c in names])


def _read_csv(conn, expressions, source, names, text=(), as_arrays=False, params=None):
    """``SELECT expressions FROM source`` as a DataFrame of columns `names`, through CSV
    text that the database writes in one value (string_agg, group_concat) and Arrow
    parses (columns in `text` as strings, quoted with quote_literal / quote(), the others
    as integers): rows never become Python objects one by one, nor protocol messages."""
    if is_postgresql(conn):
        parts = [f"quote_literal({e})" if n in text else f"coalesce(({e})::text, '')"
                 for e, n in zip(expressions, names)]
        aggregate = "string_agg({}, chr(10))"
    else:
        parts = [f"quote({e})" if n in text else f"ifnull({e}, '')"
                 for e, n in zip(expressions, names)]
        aggregate = "group_concat({}, char(10))"
    row = " || ',' || ".join(parts)
    sql = f"SELECT {aggregate.format(row)} FROM {source}"
    found = (conn.exec_driver_sql(sql) if params is None
             else conn.exec_driver_sql(sql, params)).scalar()
    if not found:
        if as_arrays:
            return {n: np.zeros(0, dtype=np.int64) for n in names}
        return pd.DataFrame({n: pd.Series([], dtype=object if n in text else np.int64)
                             for n in names})
    table = pacsv.read_csv(
        io.BytesIO(found.encode()), read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(quote_char="'", double_quote=True,
                                         newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() if n in text else pa.int64() for n in names},
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    if as_arrays:
        return {n: table[n].to_numpy() for n in names}
    return table.to_pandas()


def _read_ints(conn, expressions, source, params=None):
    """``SELECT expressions FROM source`` (integers, no NULL) as int64 arrays, through CSV
    text as `_read_csv`."""
    names = [f"c{i}" for i in range(len(expressions))]
    frame = _read_csv(conn, expressions, source, names, as_arrays=True, params=params)
    return tuple(frame[n] for n in names)


def _keys(conn, name, columns, alias="k"):
    """Rows of these integer columns (a dict of arrays) to join in `conn`'s transaction:
    ``(FROM item named alias, parameters)``. PostgreSQL takes them as array parameters
    (one round trip, no table to create), SQLite from a temporary table."""
    if is_postgresql(conn):
        names = list(columns)
        arrays = ", ".join(f"CAST(%({name}_{c})s AS bigint[])" for c in names)
        return (f"unnest({arrays}) AS {alias}({', '.join(names)})",
                {f"{name}_{c}": np.asarray(v, dtype=np.int64).tolist()
                 for c, v in columns.items()})
    _stage(conn, name, columns)
    return f"temp.{name} AS {alias}", None


_LIVE_COLUMNS = ["store_pk", "state", "since_us", "latest_us", "counted_us", "counted_active",
                 "next_us"]
# The state as its position in STATES, in SQL.
_STATE_CODE = "CASE l.state " + " ".join(
    f"WHEN '{name}' THEN {number}" for number, name in enumerate(live_state.STATES)) + " END"


def _read_live(conn, before=None, stored_polls=None):
    """Every live row, its latest_us and counted_us completed when they lag (see
    `_write_live`) with the polls up to `before` (the old now; None: as the table says).

    A lagging row is a quiet store's: every poll of it since its row's latest_us was
    quiet, so it was an observation when the store was open (the state says whether),
    and none when closed. Its polls since lie within WRITE_LAG_US before `before`."""
    pk, state, since, written_latest, written_counted, active, next_us = _read_ints(
        conn, ["l.store_pk", _STATE_CODE, "l.since_us", "l.latest_us",
               f"coalesce(l.counted_us, {NO_INSTANT})",
               "coalesce(CAST(l.counted_active AS INTEGER), 0)", "l.next_us"], "live_store l")
    rows = LiveRows.of(pk=pk, state=state.astype(np.int8), since_us=since,
                       latest_us=written_latest, counted_us=written_counted,
                       counted_active=active != 0, next_us=next_us,
                       written_latest_us=written_latest, written_counted_us=written_counted)
    if before is None or len(rows) == 0:
        return rows
    store, latest = _latest_polls(conn, before, stored_polls, rows)
    found = np.full(len(rows), NO_INSTANT, dtype=np.int64)
    there = rows.find(store)
    found[there[there >= 0]] = latest[there >= 0]
    later = found > rows.written_latest_us
    observed = later & (rows.state != CLOSED)
    return replace(rows, latest_us=np.where(later, found, rows.latest_us),
                   counted_us=np.where(observed, found, rows.counted_us))


def _latest_polls(conn, before, stored_polls, rows):
    """Each store's latest poll up to `before` (store_pk, timestamp_us) for the stores
    whose `rows` may lag: of all polls when ingest sent them; else from the polls of the
    last two hours (most stores' latest), then, for the few stores not found there whose
    row may lag, from theirs of the WRITE_LAG_US before."""
    if stored_polls is not None:
        return stored_polls.latest_up_to(before)
    lowest, recent = hour_of(before - WRITE_LAG_US), max(hour_of(before - WRITE_LAG_US),
                                                          hour_of(before) - 1)
    store, instant = _read_ints(
        conn, ["g.store_pk", "g.latest_us"],
        "(SELECT store_pk, max(timestamp_us) AS latest_us FROM store_status "
        f"WHERE hour >= {recent} AND hour <= {hour_of(before)} AND timestamp_us <= {before} "
        "GROUP BY store_pk) g")
    order = np.argsort(store)
    store, instant = store[order], instant[order]
    older = (rows.written_latest_us > before - WRITE_LAG_US) \
        & (hour_of(rows.written_latest_us) < recent) & ~_isin_sorted(rows.pk, store)
    if recent > lowest and older.any():
        keys, params = _keys(conn, "live_older", {"store_pk": rows.pk[older]})
        hours = ", ".join(str(hour) for hour in range(lowest, recent))
        more = _read_ints(
            conn, ["g.store_pk", "g.latest_us"],
            f"(SELECT p.store_pk, max(p.timestamp_us) AS latest_us FROM {keys} JOIN "
            f"store_status p ON p.hour IN ({hours}) AND p.store_pk = k.store_pk "
            f"WHERE p.timestamp_us <= {before} GROUP BY p.store_pk) g", params)
        store, instant = np.concatenate([store, more[0]]), np.concatenate([instant, more[1]])
    return store, instant


def _stores_with_open_incident(conn):
    """The stores with an open incident kept (sorted, distinct)."""
    (found,) = _read_ints(conn, ["store_pk"], f"incident WHERE end_us = {OPEN_END_US}")
    return np.unique(found)


def _write_live(conn, live, changed, computed, now):
    """Write what changed of the live rows; return every row (`live` with `changed`'s in
    place, and what the table now holds).

    A row is written when its state, since, next change or latest observation's status
    change, when its store was computed again (`computed`) or is silent and anything
    changed, or when it is new. A quiet store's new poll alone changes only latest_us and
    counted_us, each hour for nearly every store: those are written once they lag by
    WRITE_LAG_US / 2 or more (up to WRITE_LAG_US, spread over the stores so that not all
    come due in the same hour), except the rows of down and silent stores (NEVER_LAGGING).
    Readers complete a lagging row with the store's polls since (`app.live.read`,
    `_read_live`)."""
    position = live.find(changed.pk)
    there = position >= 0
    old = live.take(np.maximum(position, 0)) if len(live) else changed
    moved = ~there | (old.state != changed.state) | (old.since_us != changed.since_us) \
        | (old.next_us != changed.next_us) | (old.counted_active != changed.counted_active)
    rows = live.replaced(changed, position)
    at = position if there.all() else rows.find(changed.pk)
    key_changed = np.zeros(len(rows), dtype=bool)
    key_changed[at] = moved
    lags = (rows.latest_us != rows.written_latest_us) \
        | (rows.counted_us != rows.written_counted_us)
    in_table = rows.written_latest_us != NO_INSTANT
    due = lags & in_table & (now - np.where(in_table, rows.written_latest_us, now)
                             >= WRITE_LAG_US // 2 + (rows.pk % 16) * (WRITE_LAG_US // 32))
    # A down or silent store's row never lags (NEVER_LAGGING): at most some thousands of
    # a million stores, which readers list by their latest poll.
    write = key_changed | ~in_table | due | (lags & _isin_sorted(rows.pk, computed)) \
        | (lags & np.isin(rows.state, _NEVER_LAGGING_CODES))
    polls_only = np.flatnonzero(write & ~key_changed & in_table)
    others = np.flatnonzero(write & (key_changed | ~in_table))
    if is_postgresql(conn):
        # One upsert: an unchanged value of the indexed state leaves the update HOT.
        _upsert_live(conn, rows.take(np.flatnonzero(write)))
    else:
        # SQLite, row by row (its own work per row is most of it either way): rows whose
        # state, since and next stay change in the columns of the polls alone (no index
        # to update: live_store's index is on state and store_id), the others in every
        # column.
        _update_polls_sqlite(conn, rows.take(polls_only))
        if len(others) > MANY_ROWS:
            _upsert_live(conn, rows.take(others))
        elif len(others):
            _upsert_sqlite(conn, rows.take(others))
    written_latest = rows.written_latest_us.copy()
    written_counted = rows.written_counted_us.copy()
    written_latest[write] = rows.latest_us[write]
    written_counted[write] = rows.counted_us[write]
    return replace(rows, written_latest_us=written_latest, written_counted_us=written_counted)


# How far a live row's latest_us and counted_us may lag behind a quiet store's polls.
WRITE_LAG_US = 24 * 3_600_000_000


def _update_polls_sqlite(conn, rows):
    if len(rows) == 0:
        return
    has = rows.counted_us != NO_INSTANT
    conn.exec_driver_sql(
        "UPDATE live_store SET latest_us = ?, counted_us = ?, counted_active = ? "
        "WHERE store_pk = ?",
        list(zip(rows.latest_us.tolist(), _with_nulls(rows.counted_us, has),
                 _with_nulls(rows.counted_active, has), rows.pk.tolist())))


def _upsert_sqlite(conn, rows):
    has = rows.counted_us != NO_INSTANT
    written = _LIVE_COLUMNS[1:]
    # ?1 is the store's key, used twice: for itself and to look up its store id.
    conn.exec_driver_sql(
        f"INSERT INTO live_store (store_id, {', '.join(_LIVE_COLUMNS)}) VALUES "
        "((SELECT store_id FROM store WHERE id = ?1), "
        + ", ".join(f"?{n}" for n in range(1, len(_LIVE_COLUMNS) + 1))
        + ") ON CONFLICT (store_pk) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in written),
        list(zip(rows.pk.tolist(), np.array(live_state.STATES)[rows.state].tolist(),
                 rows.since_us.tolist(), rows.latest_us.tolist(),
                 _with_nulls(rows.counted_us, has), _with_nulls(rows.counted_active, has),
                 rows.next_us.tolist())))


def _with_nulls(column, present):
    """A column as a list, None where not `present`."""
    values = column.tolist()
    for position in np.flatnonzero(~present).tolist():
        values[position] = None
    return values


def _upsert_live(conn, rows):
    """Insert or overwrite these live rows, through a temporary table."""
    if len(rows) == 0:
        return
    _stage(conn, "live_new", {"store_pk": rows.pk, "state": rows.state.astype(np.int64),
                              "since_us": rows.since_us, "latest_us": rows.latest_us,
                              "counted_us": rows.counted_us,
                              "counted_active": rows.counted_active.astype(np.int64),
                              "next_us": rows.next_us})
    state = "CASE n.state " + " ".join(f"WHEN {number} THEN '{name}'" for number, name in
                                       enumerate(live_state.STATES)) + " END"
    written = _LIVE_COLUMNS[1:]
    # Every live row's store is in `store` (ingest registers stores first, and none is
    # deleted): the join finds each one's id. "WHERE true" tells SQLite's parser that
    # ON CONFLICT belongs to the INSERT.
    conn.exec_driver_sql(
        f"INSERT INTO live_store (store_id, {', '.join(_LIVE_COLUMNS)}) SELECT s.store_id, "
        f"n.store_pk, {state}, n.since_us, n.latest_us, CASE WHEN n.counted_us = {NO_INSTANT} "
        f"THEN NULL ELSE n.counted_us END, CASE WHEN n.counted_us = {NO_INSTANT} THEN NULL "
        "ELSE n.counted_active = 1 END, n.next_us FROM live_new n JOIN store s ON s.id = "
        "n.store_pk WHERE true ON CONFLICT (store_pk) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in written))


_HOURS = ("store_pk", "day_of_week", "start_local_s", "end_local_s")


def _engine_hours(hours, pks=None):
    """The engine's hours frame of the stores `pks` (all for None), from columns by name
    (an Arrow table, a frame or a dict of arrays)."""
    columns = {c: _column(hours[c]) if isinstance(hours, pa.Table) else
               np.asarray(hours[c], dtype=np.int64) for c in _HOURS}
    rows = _rows_of(columns["store_pk"], pks)
    return pd.DataFrame({"store_id" if c == "store_pk" else c: columns[c][rows] for c in _HOURS})


def _engine_zones(zones, pks=None):
    """The engine's zones frame of the stores `pks` (all for None), likewise."""
    store = _column(zones["store_pk"]) if isinstance(zones, pa.Table) else np.asarray(
        zones["store_pk"], dtype=np.int64)
    names = zones["timezone_str"]
    names = names.to_numpy(zero_copy_only=False) if isinstance(zones, pa.Table) else \
        np.asarray(names, dtype=object)
    rows = _rows_of(store, pks)
    return pd.DataFrame({"store_id": store[rows], "timezone_str": names[rows]})


def _rows_of(store, pks):
    """Positions of the rows of the stores `pks` (all for None) in a column of store keys."""
    if pks is None:
        return slice(None)
    if len(pks) == 0 or len(store) == 0:
        return np.zeros(0, dtype=np.int64)
    wanted = np.zeros(max(int(store.max()), int(pks.max())) + 1, dtype=bool)
    wanted[pks] = True
    return np.flatnonzero(wanted[store])


def _schedules(conn, kept, pks, copies, rescheduled, stored=None):
    """Hours and zones of the stores `pks` (all for None), as the engine's frames.

    Every store's are kept in `kept` (as columns) as of the latest hours or zone file
    ingested (its ingest_file id, with its ingest's fingerprint and time: another process's
    ingest of such a file is seen), read from the columnar copy of the data before this
    ingest when this ingest changes no hours or zone and there is a copy, else from the
    database. `stored`, when given, is every store's hours and zones after this ingest
    (the ingest knew them without reading them back), and is used first. Without it, an
    ingest that changes some reads those of `pks` from the database (or all of them)."""
    if len(rescheduled) and pks is not None and stored is None:
        keys, params = _keys(conn, "live_keys", {"store_pk": pks})
        return (_engine_hours(_read_csv(
            conn, ["h.store_pk", "h.day_of_week", "h.start_local_s", "h.end_local_s"],
            f"business_hours h JOIN {keys} ON k.store_pk = h.store_pk", list(_HOURS),
            params=params, as_arrays=True)),
            _engine_zones(_read_csv(
                conn, ["z.store_pk", "z.timezone_str"],
                f"store_timezone z JOIN {keys} ON k.store_pk = z.store_pk",
                ["store_pk", "timezone_str"], text=("timezone_str",), params=params)))
    version = _schedules_version(conn)
    if kept.get("version") != version:
        kept.pop("version", None)
        tables = stored
        if tables is None and len(rescheduled) == 0 and copies is not None and copies.enabled:
            tables = copies.load(snapshot.read_version(conn))
        if tables is None:
            tables = snapshot.read_tables(conn, ("hours", "zones"))
        zones = tables["zones"]
        kept.update(version=version, hours={c: _column(tables["hours"][c]) for c in _HOURS},
                    zones={"store_pk": _column(zones["store_pk"]),
                           "timezone_str": zones["timezone_str"].to_numpy(
                               zero_copy_only=False)})
    return _engine_hours(kept["hours"], pks), _engine_zones(kept["zones"], pks)


def _schedules_version(conn):
    """Which hours and zones the data has: the latest hours or zone file ingested."""
    return tuple(conn.execute(sa.text(
        "SELECT f.id, i.fingerprint, i.created_at FROM ingest_file f JOIN ingest i "
        "ON i.id = f.ingest_id WHERE f.kind IN ('hours', 'timezone') "
        "ORDER BY f.id DESC LIMIT 1")).first() or ())


def _kept_incidents(conn, pks, since_of):
    """Kept incidents of the stores `pks` that end after each store's `since` (a join on
    the index of store and end)."""
    names = ["id", "store_pk", "start_us", "end_us", "since_us"]
    if len(pks) == 0:
        return {name: np.zeros(0, dtype=np.int64) for name in names}
    keys, params = _keys(conn, "live_since", {"store_pk": pks, "since_us": since_of})
    return dict(zip(names, _read_ints(
        conn, ["i.id", "i.store_pk", "i.start_us", "i.end_us", "k.since_us"],
        f"{keys} JOIN incident i ON i.store_pk = k.store_pk AND i.end_us > k.since_us",
        params)))


def _silent_stores(conn, pks, latest_us):
    """Store payloads of stores that became silent."""
    if len(pks) == 0:
        return []
    names = dict(conn.execute(sa.select(Store.id, Store.store_id).where(
        Store.id.in_([int(p) for p in pks]))).all())
    return [{"store_id": names[int(p)], "latest_poll_us": int(t)} for p, t in zip(pks, latest_us)]
