"""Keep the live state and the incidents up to date, in the ingest's own transaction.

After every ingest (`on_polls_loaded`, connected to `app.ingest.load.polls_loaded`), the
stores the ingest can change are computed again and compared with what is kept; the
differences become inserts, updates and deletes, and webhook events
(`app.live.webhooks.enqueue`).

Which stores: those with new polls or new hours or zone, and, when `now` moved, those whose
business hours began or ended since (`live_store.next_us`), that fell silent, or whose
inactive latest observation was the previous `now`. Any other store keeps its state and
incidents. Their rows are read by joins on a staged list of their keys, as CSV text the
database writes in one value.

How: a store's status is that of the nearest observation in business time, so a poll
later than the store's latest such observation `L` changes nothing before `L`. Such stores
(nearly all, with an hourly feed) are computed from `L` and their new polls only, and an
incident running through `L` keeps its kept start. A store with a poll at or before `L`
(late or re-sent), or new hours or zone, is computed again from all its polls, from where
the data begins (the earliest poll); the first computation of a database, or a poll
earlier than all data, computes every store from whole columns. Incidents that ended more
than `INCIDENT_DAYS` before `now` are dropped.
"""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from app.ingest import bulk
from app.live import state as live_state
from app.live import webhooks
from app.storage import snapshot
from app.storage.database import is_postgresql
from app.storage.models import (
    OPEN_END_US,
    Incident,
    LiveMeta,
    LiveStore,
    Store,
    StoreStatus,
)

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000


def on_polls_loaded(app, conn, polls, rescheduled, stored_polls=None):
    """The ingest hook: `polls` (store_pk, timestamp_us, active arrays) were added and the
    stores `rescheduled` got new hours or a new zone, in the transaction of `conn`;
    `stored_polls`, when not None, is every poll now in the database (an Arrow table)."""
    update(conn, polls, rescheduled, settings_of(app.config),
           app.extensions.setdefault("live_schedules", {}))


def on_polls_removed(app, conn):
    """The removal hook (`app.ingest.remove.polls_removed`): polls were removed in `conn`'s
    transaction, so `now`, the data's start and any store may have changed. Every store is
    computed again from its polls, and stores left without a poll lose their state and their
    incidents (events say so)."""
    conn.execute(sa.delete(LiveMeta))  # computed again from whole columns
    nothing = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
    update(conn, nothing, np.zeros(0, np.int64), settings_of(app.config),
           app.extensions.setdefault("live_schedules", {}))
    gone = np.asarray(conn.execute(sa.select(LiveStore.store_pk).where(~sa.exists().where(
        StoreStatus.store_pk == LiveStore.store_pk))).scalars().all(), dtype=np.int64)
    if len(gone) == 0:
        return
    kept = _kept_incidents(conn, gone, np.full(len(gone), np.iinfo(np.int64).min))
    applied = _apply(conn, diff(kept, pd.DataFrame({
        "store_pk": np.zeros(0, np.int64), "start_us": np.zeros(0, np.int64),
        "end_us": np.zeros(0, np.int64)})))
    conn.execute(sa.delete(LiveStore).where(LiveStore.store_pk.in_([int(p) for p in gone])))
    now = conn.execute(sa.select(LiveMeta.now_us)).scalar()
    webhooks.enqueue(conn, applied, now if now is not None else webhooks.now_us())


def settings_of(config):
    return {"silent_after_us": int(config["SILENT_AFTER_MINUTES"] * MINUTE_US),
            "incident_days": float(config["INCIDENT_DAYS"])}


def update(conn, polls, rescheduled, settings, schedules=None):
    """Bring the live tables up to date with the data in `conn`'s transaction.

    `schedules`: a dict this process keeps between ingests, for `_schedules`."""
    new_pk, new_us, new_active = (np.asarray(c) for c in polls)
    new_pk = new_pk.astype(np.int64)
    new_us = new_us.astype(np.int64)
    new_active = new_active.astype(bool)
    rescheduled = np.unique(np.asarray(rescheduled, dtype=np.int64))
    meta = conn.execute(sa.select(LiveMeta.now_us, LiveMeta.first_us)).first()
    first_time = meta is None or meta.now_us is None
    if first_time:
        bounds = conn.execute(sa.text(
            "SELECT min(timestamp_us), max(timestamp_us) FROM store_status")).first()
        if bounds[0] is None:
            return
        first_poll, now = int(bounds[0]), int(bounds[1])
    else:
        if len(new_pk) == 0 and len(rescheduled) == 0:
            return
        first_poll, now = int(meta.first_us), int(meta.now_us)
        if len(new_us):
            first_poll, now = min(first_poll, int(new_us.min())), max(now, int(new_us.max()))
    # Before a store's first observation its status is that observation's, back to where
    # the data begins: the earliest poll of all stores. Not the week window's start, which
    # moves with every ingest while the data is younger than a week.
    origin = first_poll
    whole = first_time or origin != int(meta.first_us)
    silent_after = settings["silent_after_us"]

    # The new polls per store: first and latest instant.
    per_store = pd.DataFrame({"pk": new_pk, "t": new_us}).groupby("pk")["t"].agg(["min", "max"])
    if whole:
        # Every store from all its polls: whole columns, read once.
        tables = snapshot.read_tables(conn, ("polls", "hours", "zones"))
        read_polls = _engine_polls(tables["polls"])
        live = _read_live(conn, None)
        all_pks = pd.Index(np.unique(read_polls["store_id"].to_numpy()))
        slow = all_pks
        hours = _engine_hours(tables["hours"])
        zones = _engine_zones(tables["zones"])
        if schedules is not None:  # every store's, as `_schedules` keeps them: read once
            schedules.update(version=_schedules_version(conn), hours=hours, zones=zones)
    else:
        # The stores this ingest can change: those with new polls or new hours, and, when
        # `now` moved, those whose business time began or ended or that fell silent since.
        due = _due(conn, int(meta.now_us), now, silent_after) if now > int(meta.now_us) else []
        keys = per_store.index.union(pd.Index(rescheduled)).union(pd.Index(due))
        _stage(conn, "live_keys", {"store_pk": keys.to_numpy(dtype=np.int64)})
        live = _read_live(conn, "live_keys")
        all_pks = keys.intersection(live.index.union(per_store.index))
        counted = live["counted_us"].reindex(per_store.index)
        late = per_store.index[(counted.notna() & (per_store["min"] <= counted)).to_numpy()]
        slow = pd.Index(late).union(pd.Index(rescheduled).intersection(all_pks))
        if len(slow):
            _stage(conn, "live_slow", {"store_pk": slow.to_numpy(dtype=np.int64)})
            read_polls = _read_csv(conn, ["p.store_pk", "p.timestamp_us",
                                          "CAST(p.active AS INTEGER)"],
                                   "store_status p JOIN live_slow k ON k.store_pk = p.store_pk",
                                   ["store_id", "timestamp_us", "active"])
            read_polls["active"] = read_polls["active"].astype(bool)
        if len(rescheduled) == 0 and schedules is not None:
            hours, zones = _schedules(conn, schedules, all_pks)
        else:
            hours = _engine_hours(_read_csv(
                conn, ["h.store_pk", "h.day_of_week", "h.start_local_s", "h.end_local_s"],
                "business_hours h JOIN live_keys k ON k.store_pk = h.store_pk",
                ["store_pk", "day_of_week", "start_local_s", "end_local_s"]))
            zones = _engine_zones(_read_csv(
                conn, ["z.store_pk", "z.timezone_str"],
                "store_timezone z JOIN live_keys k ON k.store_pk = z.store_pk",
                ["store_pk", "timezone_str"], text=("timezone_str",)))
    if len(all_pks) == 0:
        return
    fast = all_pks.difference(slow)

    frames, since, joinable = [], [], pd.Index([])
    # Slow stores: all their polls, incidents from the origin.
    if len(slow):
        frames.append(read_polls)
        since.append(pd.DataFrame({"store_id": slow.to_numpy(),
                                   "since_us": np.full(len(slow), origin, dtype=np.int64)}))
    if len(fast):
        fast_live = live.reindex(fast)
        has_l = fast_live["counted_us"].notna().to_numpy()
        with_new = fast.isin(per_store.index)
        joinable = fast[has_l]
        frames.append(pd.DataFrame({
            "store_id": joinable.to_numpy(),
            "timestamp_us": fast_live["counted_us"].to_numpy()[has_l].astype(np.int64),
            "active": fast_live["counted_active"].to_numpy()[has_l].astype(bool)}))
        is_fast_poll = np.isin(new_pk, fast.to_numpy())
        frames.append(pd.DataFrame({"store_id": new_pk[is_fast_poll],
                                    "timestamp_us": new_us[is_fast_poll],
                                    "active": new_active[is_fast_poll]}))
        # A store with neither: its latest poll (outside business time, as all its polls
        # are) places it on the axis; it has no observation.
        bare = ~has_l & ~with_new
        frames.append(pd.DataFrame({
            "store_id": fast[bare].to_numpy(),
            "timestamp_us": fast_live["latest_us"].to_numpy()[bare].astype(np.int64),
            "active": np.zeros(bare.sum(), dtype=bool)}))
        fast_since = np.where(has_l, np.nan_to_num(fast_live["counted_us"].to_numpy(),
                                                   nan=0).astype(np.int64),
                              np.where(with_new, origin,
                                       np.nan_to_num(fast_live["latest_us"].to_numpy(),
                                                     nan=0).astype(np.int64)))
        since.append(pd.DataFrame({"store_id": fast.to_numpy(), "since_us": fast_since}))
    polls = pd.concat(frames, ignore_index=True)
    polls = polls.sort_values(["store_id", "timestamp_us"], kind="stable", ignore_index=True)
    since = pd.concat(since, ignore_index=True)
    result = live_state.compute(polls, hours, zones, now, since)

    pks = result.store_ids.astype(np.int64)
    since_of = since.set_index("store_id")["since_us"].reindex(pks).to_numpy()
    horizon = now - int(settings["incident_days"] * DAY_US)

    fresh = pd.DataFrame({
        "store_pk": pks[result.incident_store], "start_us": result.incident_start,
        "end_us": np.where(result.incident_open, OPEN_END_US, result.incident_end)})
    kept = _kept_incidents(conn, pks, since_of)
    # An incident running through a store's latest observation before this ingest keeps the
    # start it had: only the part from that observation on was computed again.
    through = kept[(kept["start_us"] < kept["since_us"])
                   & kept["store_pk"].isin(joinable)].drop_duplicates("store_pk")
    if len(through):
        joined = fresh.merge(through[["store_pk", "start_us", "since_us"]], how="left",
                             on="store_pk", suffixes=("", "_kept"))
        rejoin = (joined["start_us"] == joined["since_us"]).to_numpy()
        fresh.loc[rejoin, "start_us"] = joined.loc[rejoin, "start_us_kept"].to_numpy(
            dtype=np.int64)
        # A store whose latest observation is `now` itself had nothing after it to compute:
        # the incident through it stays as it is.
        unchanged = through[through["since_us"] == now]
        fresh = pd.concat([fresh, unchanged[["store_pk", "start_us", "end_us"]]],
                          ignore_index=True)
    fresh = fresh[fresh["end_us"] >= horizon].reset_index(drop=True)
    kept = kept[kept["end_us"] >= horizon].reset_index(drop=True)
    changes = diff(kept, fresh)
    applied = _apply(conn, changes)

    latest = live["latest_us"].reindex(pks).to_numpy()
    latest = np.fmax(latest, per_store["max"].reindex(pks).to_numpy())
    if len(slow):  # a slow store's latest poll from the polls read
        read_latest = polls.groupby("store_id")["timestamp_us"].max().reindex(pks).to_numpy()
        latest = np.where(np.isin(pks, slow.to_numpy()), read_latest, latest)
    latest = latest.astype(np.int64)
    new_states = live_state.states(result.open_now, result.counted_us, result.counted_active,
                                   latest, now, silent_after)
    old = live.reindex(pks)
    old_states = old["state"].to_numpy()
    same = old_states == new_states
    state_since = np.where(same, np.nan_to_num(old["since_us"].to_numpy(), nan=now),
                           now).astype(np.int64)
    _write_live(conn, pks, new_states, state_since, latest, result, old)
    conn.execute(sa.delete(LiveMeta))
    conn.execute(sa.insert(LiveMeta).values(id=1, now_us=now, first_us=first_poll))
    conn.execute(sa.delete(Incident).where(Incident.end_us < horizon))
    became_silent = pks[(new_states == live_state.SILENT) & ~same
                        & pd.notna(old_states)]
    webhooks.enqueue(conn, applied, now, became_silent=_silent_stores(
        conn, became_silent, latest[np.isin(pks, became_silent)]))


def diff(kept, fresh):
    """What changes from the kept incidents to the fresh ones of the same stores.

    Both are frames of ``store_pk, start_us, end_us`` (kept also ``id``). A kept incident
    belongs to the first fresh one it overlaps; a fresh one takes the id of the earliest
    kept incident that belongs to it (so a split keeps the id on its first part, a merge on
    the earlier one). Returns a frame with ``kind`` opened, closed, updated or removed, and
    ``id`` (None for opened), ``store_pk``, ``start_us``, ``end_us`` (the kept values for
    removed), ``old_end_us``.
    """
    kept = kept.sort_values(["store_pk", "start_us"], ignore_index=True)
    fresh = fresh.sort_values(["store_pk", "start_us"], ignore_index=True)
    fresh["fresh"] = np.arange(len(fresh))
    if len(kept) and len(fresh):
        # The first fresh incident of the store ending after the kept one starts.
        found = pd.merge_asof(
            kept[["store_pk", "start_us", "end_us"]].reset_index().sort_values("start_us"),
            fresh[["store_pk", "start_us", "end_us", "fresh"]].sort_values("end_us")
            .rename(columns={"start_us": "f_start", "end_us": "f_end"}),
            left_on="start_us", right_on="f_end", by="store_pk", direction="forward",
            allow_exact_matches=False).set_index("index").sort_index()
        overlaps = (found["f_start"] < found["end_us"]).to_numpy()
        owner = np.where(overlaps, found["fresh"].fillna(-1).to_numpy(), -1).astype(np.int64)
    else:
        owner = np.full(len(kept), -1, dtype=np.int64)
    kept["owner"] = owner
    # Kept incidents are sorted by start within a store: the first of an owner keeps.
    keeper = (owner >= 0) & ~kept.duplicated("owner").to_numpy()
    removed = kept[~keeper]
    matched = kept[keeper]
    fresh["id"] = pd.array([pd.NA] * len(fresh), dtype="Int64")
    fresh["old_start_us"] = pd.array([pd.NA] * len(fresh), dtype="Int64")
    fresh["old_end_us"] = pd.array([pd.NA] * len(fresh), dtype="Int64")
    slots = matched["owner"].to_numpy()
    fresh.loc[slots, "id"] = matched["id"].to_numpy()
    fresh.loc[slots, "old_start_us"] = matched["start_us"].to_numpy()
    fresh.loc[slots, "old_end_us"] = matched["end_us"].to_numpy()
    has_id = fresh["id"].notna().to_numpy()
    moved = has_id & ((fresh["old_start_us"] != fresh["start_us"])
                      | (fresh["old_end_us"] != fresh["end_us"])).fillna(False).to_numpy()
    closed = moved & (fresh["old_end_us"] == OPEN_END_US).fillna(False).to_numpy() & (
        fresh["end_us"] != OPEN_END_US).to_numpy()
    kinds = np.where(~has_id, "opened", np.where(closed, "closed", "updated"))
    out = fresh[~has_id | moved].assign(kind=kinds[~has_id | moved])
    gone = removed.assign(kind="removed", old_end_us=removed["end_us"])
    columns = ["kind", "id", "store_pk", "start_us", "end_us", "old_end_us"]
    return pd.concat([out[columns], gone[columns]], ignore_index=True)


def _apply(conn, changes):
    """Write the changes; return them with the ids of the inserted incidents."""
    if len(changes) == 0:
        return changes
    changes = changes.copy()
    gone = changes["kind"] == "removed"
    if gone.any():
        _stage(conn, "live_gone", {"id": changes.loc[gone, "id"].to_numpy(dtype=np.int64)})
        conn.execute(sa.text("DELETE FROM incident WHERE id IN (SELECT id FROM live_gone)"))
    moved = changes["kind"].isin(["closed", "updated"])
    if moved.any():
        _stage(conn, "live_moved", {c: changes.loc[moved, c].to_numpy(dtype=np.int64)
                                    for c in ("id", "start_us", "end_us")})
        conn.execute(sa.text(
            "UPDATE incident SET start_us = m.start_us, end_us = m.end_us FROM live_moved m "
            "WHERE incident.id = m.id"))
    opened = (changes["kind"] == "opened").to_numpy()
    if opened.any():
        last_id = conn.execute(sa.select(sa.func.max(Incident.id))).scalar() or 0
        new = changes.loc[opened, ["store_pk", "start_us", "end_us"]].astype(np.int64)
        bulk.insert_rows(conn, "incident", list(new.columns),
                         [new[c].to_numpy() for c in new.columns])
        ids = _read_csv(conn, ["id", "store_pk", "start_us"],
                        f"incident WHERE id > {int(last_id)}", ["id", "store_pk", "start_us"])
        # An inserted incident is the only one of its store that starts there.
        found = new.merge(ids, on=["store_pk", "start_us"], how="left")
        changes.loc[opened, "id"] = found["id"].to_numpy(dtype=np.int64)
    return changes


def _stage(conn, name, columns):
    """A temporary table `name` of these integer columns (a dict of arrays), for joins in
    `conn`'s transaction."""
    names = list(columns)
    if is_postgresql(conn):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{name}")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ("
                             + ", ".join(f"{c} BIGINT" for c in names) + ") ON COMMIT DROP")
    else:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ("
                             + ", ".join(f"{c} INTEGER" for c in names) + ")")
    bulk.insert_rows(conn, name, names, [np.asarray(columns[c]) for c in names])
    if names[0] in ("store_pk", "id"):
        conn.exec_driver_sql(f"CREATE INDEX {name}_key ON {name} ({names[0]})")


def _read_csv(conn, expressions, source, names, text=()):
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
    found = conn.exec_driver_sql(f"SELECT {aggregate.format(row)} FROM {source}").scalar()
    if not found:
        return pd.DataFrame({n: pd.Series([], dtype=object if n in text else np.int64)
                             for n in names})
    table = pacsv.read_csv(
        io.BytesIO(found.encode()), read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(quote_char="'", double_quote=True,
                                         newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() if n in text else pa.int64() for n in names},
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    return table.to_pandas()


_LIVE_COLUMNS = ["store_pk", "state", "since_us", "latest_us", "counted_us", "counted_active",
                 "next_us"]


def _read_live(conn, keys):
    """The live rows of the stores in the table `keys` (all rows for None), by store_pk."""
    source = "live_store l" + (f" JOIN {keys} k ON k.store_pk = l.store_pk" if keys else "")
    frame = _read_csv(conn, ["l.store_pk", "l.state", "l.since_us", "l.latest_us",
                             "l.counted_us", "CAST(l.counted_active AS INTEGER)", "l.next_us"],
                      source, _LIVE_COLUMNS, text=("state",))
    frame = frame.astype({"store_pk": np.int64, "since_us": "float64", "latest_us": "float64",
                          "counted_us": "float64", "counted_active": "float64",
                          "next_us": "float64"})
    return frame.set_index("store_pk")


def _due(conn, before, now, silent_after):
    """Stores without new polls whose state or incidents can have changed from `before`
    to `now`: their business time began or ended, they fell silent, or their latest
    observation was inactive at `before` itself (an incident of no length until `now`
    moves). Any other store keeps its incidents: an active status stays so, an open
    incident stays open."""
    return conn.execute(sa.select(LiveStore.store_pk).where(sa.or_(
        LiveStore.next_us <= now,
        sa.and_(LiveStore.state.in_([live_state.UP, live_state.DOWN]),
                LiveStore.latest_us < now - silent_after),
        sa.and_(LiveStore.counted_active.is_(False), LiveStore.counted_us >= before)))
    ).scalars().all()


def _write_live(conn, pks, states, since_us, latest_us, result, old):
    """Write the live rows that changed (`old`: the rows before, by store, NaN for none)."""
    has = result.counted_us != live_state.NO_INSTANT
    counted = np.where(has, result.counted_us, -1)
    active = np.where(has, result.counted_active, False)
    changed = ((old["state"].to_numpy() != states)
               | (old["since_us"].to_numpy() != since_us)
               | (old["latest_us"].to_numpy() != latest_us)
               | (np.nan_to_num(old["counted_us"].to_numpy(), nan=-1) != counted)
               | (np.nan_to_num(old["counted_active"].to_numpy(), nan=0) != active)
               | (old["next_us"].to_numpy() != result.next_change_us))
    if not changed.any():
        return
    keep = np.flatnonzero(changed)
    # The state as its number in STATES: the stage holds integers only.
    code = np.searchsorted(np.array(live_state.STATES), states[keep],
                           sorter=np.argsort(live_state.STATES))
    code = np.argsort(live_state.STATES)[code]
    _stage(conn, "live_new", {"store_pk": pks[keep], "state": code,
                              "since_us": since_us[keep], "latest_us": latest_us[keep],
                              "counted_us": counted[keep],
                              "counted_active": active[keep].astype(np.int64),
                              "next_us": result.next_change_us[keep]})
    state = "CASE n.state " + " ".join(f"WHEN {number} THEN '{name}'" for number, name in
                                       enumerate(live_state.STATES)) + " END"
    written = _LIVE_COLUMNS[1:]
    # "WHERE true" tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    conn.exec_driver_sql(
        f"INSERT INTO live_store ({', '.join(_LIVE_COLUMNS)}) SELECT n.store_pk, {state}, "
        "n.since_us, n.latest_us, CASE WHEN n.counted_us = -1 THEN NULL ELSE n.counted_us "
        "END, CASE WHEN n.counted_us = -1 THEN NULL ELSE n.counted_active = 1 END, n.next_us "
        "FROM live_new n WHERE true ON CONFLICT (store_pk) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in written))


def _engine_polls(table):
    """The polls table (Arrow) as the engine's frame keyed by store_pk."""
    return pd.DataFrame({"store_id": table["store_pk"].to_numpy().astype(np.int64),
                         "timestamp_us": table["timestamp_us"].to_numpy().astype(np.int64),
                         "active": table["active"].to_numpy().astype(bool)})


def _engine_hours(hours):
    hours = hours if isinstance(hours, pd.DataFrame) else hours.to_pandas()
    return hours.rename(columns={"store_pk": "store_id"}).astype(
        {"store_id": np.int64, "day_of_week": np.int64, "start_local_s": np.int64,
         "end_local_s": np.int64})


def _engine_zones(zones):
    zones = zones if isinstance(zones, pd.DataFrame) else zones.to_pandas()
    return zones.rename(columns={"store_pk": "store_id"}).astype({"store_id": np.int64})


def _schedules(conn, kept, pks):
    """Hours and zones of the stores `pks`, from every store's, which this process keeps in
    `kept` as of the latest hours or zone file ingested (its ingest_file id, with its
    ingest's fingerprint and time: another process's ingest of such a file is seen). Only
    an ingest that changes no hours or zones uses it: an hourly feed brings polls alone,
    and reading a million hours rows each hour cost more than the rest of it."""
    version = _schedules_version(conn)
    if kept.get("version") != version:
        tables = snapshot.read_tables(conn, ("hours", "zones"))
        kept.update(version=version, hours=_engine_hours(tables["hours"]),
                    zones=_engine_zones(tables["zones"]))
    wanted = pks.to_numpy(dtype=np.int64)
    hours, zones = kept["hours"], kept["zones"]
    return (hours[np.isin(hours["store_id"].to_numpy(), wanted)],
            zones[np.isin(zones["store_id"].to_numpy(), wanted)])


def _schedules_version(conn):
    """Which hours and zones the data has: the latest hours or zone file ingested."""
    return tuple(conn.execute(sa.text(
        "SELECT f.id, i.fingerprint, i.created_at FROM ingest_file f JOIN ingest i "
        "ON i.id = f.ingest_id WHERE f.kind IN ('hours', 'timezone') "
        "ORDER BY f.id DESC LIMIT 1")).first() or ())


def _kept_incidents(conn, pks, since_of):
    """Kept incidents of the stores `pks` that end after each store's `since` (a join on
    the index of store and end)."""
    _stage(conn, "live_since", {"store_pk": pks, "since_us": since_of.astype(np.int64)})
    kept = _read_csv(conn, ["i.id", "i.store_pk", "i.start_us", "i.end_us", "k.since_us"],
                     "incident i JOIN live_since k ON k.store_pk = i.store_pk "
                     "AND i.end_us > k.since_us",
                     ["id", "store_pk", "start_us", "end_us", "since_us"])
    return kept.astype(np.int64)


def _silent_stores(conn, pks, latest_us):
    """Store payloads of stores that became silent."""
    if len(pks) == 0:
        return []
    names = dict(conn.execute(sa.select(Store.id, Store.store_id).where(
        Store.id.in_([int(p) for p in pks]))).all())
    return [{"store_id": names[int(p)], "latest_poll_us": int(t)} for p, t in zip(pks, latest_us)]
