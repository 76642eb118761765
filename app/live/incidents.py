"""Keep the live state and the incidents up to date, in the ingest's own transaction.

After every ingest (`on_polls_loaded`, connected to `app.ingest.load.polls_loaded`), each
store's state at the new `now` is computed, and its incidents are computed again where the
new polls can have changed them, then compared with the kept ones; the differences become
inserts, updates and deletes, and webhook events (`app.live.webhooks.enqueue`).

Where a store's incidents can change: its status is that of the nearest observation in
business time, so a poll later than the store's latest such observation `L` changes nothing
before `L`. Such stores (nearly all, with an hourly feed) are computed from `L` and their new
polls only, and an incident running through `L` keeps its kept start: the cost follows the
stores and the new polls, not the history. A store with a poll at or before `L` (late or
re-sent), new hours or zone, or the first computation of a database, is computed again from
all its polls. Incidents that ended more than `INCIDENT_DAYS` before `now` are dropped.
"""

import numpy as np
import pandas as pd
import sqlalchemy as sa

from app.live import state as live_state
from app.live import webhooks
from app.storage import snapshot
from app.storage.models import OPEN_END_US, Incident, LiveMeta, LiveStore, Store

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
WEEK_US = 7 * DAY_US
# Above this many stores to read, whole tables are read rather than lists of stores.
_WHOLE_TABLE = 2000


def on_polls_loaded(app, conn, polls, rescheduled):
    """The ingest hook: `polls` (store_pk, timestamp_us, active arrays) were added and the
    stores `rescheduled` got new hours or a new zone, in the transaction of `conn`."""
    update(conn, polls, rescheduled, settings_of(app.config))


def settings_of(config):
    return {"silent_after_us": int(config["SILENT_AFTER_MINUTES"] * MINUTE_US),
            "incident_days": float(config["INCIDENT_DAYS"])}


def update(conn, polls, rescheduled, settings):
    """Bring the live tables up to date with the data in `conn`'s transaction."""
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
    origin_moved = not first_time and origin != int(meta.first_us)

    live = _read_live(conn)
    # The new polls per store: first and latest instant.
    per_store = pd.DataFrame({"pk": new_pk, "t": new_us}).groupby("pk")["t"].agg(["min", "max"])
    counted = live["counted_us"].reindex(per_store.index)
    late = per_store.index[(counted.notna() & (per_store["min"] <= counted)).to_numpy()]
    all_pks = live.index.union(per_store.index)
    if first_time or origin_moved:
        slow = all_pks.union(_all_store_pks(conn) if first_time else pd.Index([]))
    else:
        slow = pd.Index(late).union(pd.Index(rescheduled).intersection(all_pks))
    fast = all_pks.difference(slow)

    frames, since, joinable = [], [], pd.Index([])
    # Slow stores: all their polls, incidents from the origin.
    if len(slow):
        frames.append(_polls_of(conn, slow))
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
    hours, zones = _hours_and_zones(conn, all_pks)
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
                                   latest, now, settings["silent_after_us"])
    old_states = live["state"].reindex(pks).to_numpy()
    old_since = live["since_us"].reindex(pks).to_numpy()
    same = old_states == new_states
    state_since = np.where(same, np.nan_to_num(old_since, nan=now), now).astype(np.int64)
    _write_live(conn, pks, new_states, state_since, latest, result)
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
    gone = changes.loc[changes["kind"] == "removed", "id"].astype(int).tolist()
    for part in _chunks(gone):
        conn.execute(sa.delete(Incident).where(Incident.id.in_(part)))
    moved = changes[changes["kind"].isin(["closed", "updated"])]
    if len(moved):
        conn.execute(sa.update(Incident).where(Incident.id == sa.bindparam("b_id")).values(
            start_us=sa.bindparam("b_start"), end_us=sa.bindparam("b_end")),
            [{"b_id": int(i), "b_start": int(s), "b_end": int(e)} for i, s, e in
             zip(moved["id"], moved["start_us"], moved["end_us"])])
    opened = changes["kind"] == "opened"
    if opened.any():
        rows = [{"store_pk": int(p), "start_us": int(s), "end_us": int(e)} for p, s, e in
                zip(*(changes.loc[opened, c] for c in ("store_pk", "start_us", "end_us")))]
        ids = conn.execute(sa.insert(Incident).returning(Incident.id,
                                                         sort_by_parameter_order=True),
                           rows).scalars().all()
        changes.loc[opened, "id"] = ids
    return changes


def _chunks(values, size=500):
    return [values[i:i + size] for i in range(0, len(values), size)]


def _read_live(conn):
    rows = conn.execute(sa.select(LiveStore.store_pk, LiveStore.state, LiveStore.since_us,
                                  LiveStore.latest_us, LiveStore.counted_us,
                                  LiveStore.counted_active)).all()
    frame = pd.DataFrame(rows, columns=["store_pk", "state", "since_us", "latest_us",
                                        "counted_us", "counted_active"])
    frame = frame.astype({"store_pk": np.int64, "since_us": "float64", "latest_us": "float64",
                          "counted_us": "float64"})
    return frame.set_index("store_pk")


def _write_live(conn, pks, states, since_us, latest_us, result):
    conn.execute(sa.delete(LiveStore))
    has = result.counted_us != live_state.NO_INSTANT
    rows = [{"store_pk": p, "state": s, "since_us": a, "latest_us": t,
             "counted_us": c if h else None, "counted_active": bool(v) if h else None}
            for p, s, a, t, c, h, v in zip(pks.tolist(), states.tolist(), since_us.tolist(),
                                           latest_us.tolist(), result.counted_us.tolist(),
                                           has.tolist(), result.counted_active.tolist())]
    if rows:
        conn.execute(sa.insert(LiveStore), rows)


def _all_store_pks(conn):
    rows = conn.execute(sa.text("SELECT DISTINCT store_pk FROM store_status")).scalars().all()
    return pd.Index(np.array(rows, dtype=np.int64))


def _polls_of(conn, pks):
    """All polls of the stores `pks`, as an engine frame keyed by store_pk."""
    if len(pks) > _WHOLE_TABLE:
        table = snapshot.read_tables(conn, ("polls",))["polls"]
        frame = pd.DataFrame({"store_id": table["store_pk"].to_numpy(),
                              "timestamp_us": table["timestamp_us"].to_numpy(),
                              "active": table["active"].to_numpy().astype(bool)})
        return frame[frame["store_id"].isin(pks)]
    rows = []
    for part in _chunks(pks.tolist()):
        rows += conn.execute(sa.text(
            "SELECT store_pk, timestamp_us, active FROM store_status WHERE store_pk IN "
            "(" + ",".join(str(int(p)) for p in part) + ")")).all()
    return pd.DataFrame({"store_id": np.array([r[0] for r in rows], dtype=np.int64),
                         "timestamp_us": np.array([r[1] for r in rows], dtype=np.int64),
                         "active": np.array([bool(r[2]) for r in rows], dtype=bool)})


def _hours_and_zones(conn, pks):
    if len(pks) > _WHOLE_TABLE:
        tables = snapshot.read_tables(conn, ("hours", "zones"))
        hours = tables["hours"].to_pandas()
        zones = tables["zones"].to_pandas()
    else:
        hours, zones = [], []
        for part in _chunks([int(p) for p in pks]):
            listed = ",".join(str(p) for p in part)
            hours += conn.execute(sa.text(
                "SELECT store_pk, day_of_week, start_local_s, end_local_s FROM business_hours "
                f"WHERE store_pk IN ({listed})")).all()
            zones += conn.execute(sa.text(
                f"SELECT store_pk, timezone_str FROM store_timezone WHERE store_pk IN ({listed})"
            )).all()
        hours = pd.DataFrame(hours, columns=["store_pk", "day_of_week", "start_local_s",
                                             "end_local_s"])
        zones = pd.DataFrame(zones, columns=["store_pk", "timezone_str"])
    hours = hours.rename(columns={"store_pk": "store_id"}).astype(
        {"store_id": np.int64, "day_of_week": np.int64, "start_local_s": np.int64,
         "end_local_s": np.int64})
    zones = zones.rename(columns={"store_pk": "store_id"}).astype({"store_id": np.int64})
    return hours, zones


def _kept_incidents(conn, pks, since_of):
    """Kept incidents of the stores `pks` that end after each store's `since`."""
    if len(pks) > _WHOLE_TABLE:
        rows = conn.execute(sa.select(Incident.id, Incident.store_pk, Incident.start_us,
                                      Incident.end_us)).all()
    else:
        rows = []
        for part in _chunks(pks.tolist()):
            rows += conn.execute(sa.select(Incident.id, Incident.store_pk, Incident.start_us,
                                           Incident.end_us).where(
                Incident.store_pk.in_(part))).all()
    kept = pd.DataFrame(rows, columns=["id", "store_pk", "start_us", "end_us"]).astype(
        np.int64)
    position = pd.Index(pks).get_indexer(kept["store_pk"])
    kept = kept[position >= 0].assign(since_us=since_of[position[position >= 0]])
    return kept[kept["end_us"] > kept["since_us"]].reset_index(drop=True)


def _silent_stores(conn, pks, latest_us):
    """Store payloads of stores that became silent."""
    if len(pks) == 0:
        return []
    names = dict(conn.execute(sa.select(Store.id, Store.store_id).where(
        Store.id.in_([int(p) for p in pks]))).all())
    return [{"store_id": names[int(p)], "latest_poll_us": int(t)} for p, t in zip(pks, latest_us)]
