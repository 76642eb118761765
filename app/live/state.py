"""States and incidents of stores from their polls (SPEC "Live state and alerts").

Pure: data frames in, arrays out. The status between polls, business time and the segments
come from the engine (`ReportInputs`, `Observed`, `stretches`): a store page's timeline and
a live incident are cut by the same code. An incident is an inactive segment; it is open
when it reaches `now` and `now` is in business time.
"""

from dataclasses import dataclass

import numpy as np

from app.engine.report import CHUNK_POLLS, ReportInputs, store_chunks
from app.engine.timeline import stretches

UP, DOWN, CLOSED, SILENT = "up", "down", "closed", "silent"
STATES = (UP, DOWN, CLOSED, SILENT)
NO_INSTANT = np.iinfo(np.int64).min
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Live:
    """Per store (`store_ids`, in the engine's order): whether `now` is in business time,
    its latest observation in business time (`counted_us`, NO_INSTANT when none, and
    `counted_active`); its incidents within ``[since, now)``, sorted by store then start
    (`incident_store` indexes `store_ids`); and when business time next begins or ends
    (`next_change_us`, at most a day after `now`)."""

    now_us: int
    store_ids: np.ndarray
    open_now: np.ndarray
    counted_us: np.ndarray
    counted_active: np.ndarray
    incident_store: np.ndarray
    incident_start: np.ndarray
    incident_end: np.ndarray
    incident_open: np.ndarray
    next_change_us: np.ndarray


def compute(polls, hours, zones, now_us, since):
    """States and incidents of the stores in `polls`.

    Parameters
    ----------
    polls, hours, zones : DataFrame
        As `app.engine.report.build_report` takes them (every store needs one poll at least).
    now_us : int
        The latest poll of all the data.
    since : DataFrame
        ``store_id``, ``since_us``: per store, where its incidents are wanted from. Before
        its first observation, a store's status is that observation's (the report's rule),
        so business time is built from there.
    """
    store = polls["store_id"].to_numpy()
    if len(polls) > SPLIT_POLLS and store.dtype.kind in "iu" and bool(
            (store[1:] >= store[:-1]).all()):
        return _joined([_compute(*part, now_us) for part in
                        _split_by_store(store, polls, hours, zones, since)], now_us)
    return _compute(polls, hours, zones, since, now_us)


# Above this many polls (sorted by integer store keys), the stores are computed in parts:
# the engine's inputs hold about 40 bytes a poll, 7 GB for the 182 M polls of a million
# stores.
SPLIT_POLLS = 8_000_000


def _split_by_store(store, polls, hours, zones, since):
    """(polls, hours, zones, since) of consecutive ranges of stores of about SPLIT_POLLS
    polls each; `store` is the polls' sorted store keys."""
    cuts = np.unique(np.searchsorted(store, store[np.arange(0, len(store), SPLIT_POLLS)]))
    bounds = list(cuts) + [len(store)]
    frames = {"hours": hours, "zones": zones, "since": since}
    keyed = {name: (frame.iloc[np.argsort(frame["store_id"].to_numpy(), kind="stable")]
                    .reset_index(drop=True)) for name, frame in frames.items()}
    keys = {name: frame["store_id"].to_numpy() for name, frame in keyed.items()}
    for low, high in zip(bounds[:-1], bounds[1:]):
        first, last = store[low], store[high - 1]
        part = {name: keyed[name].iloc[np.searchsorted(keys[name], first, side="left"):
                                       np.searchsorted(keys[name], last, side="right")]
                for name in keyed}
        yield polls.iloc[low:high], part["hours"], part["zones"], part["since"]


def _joined(parts, now_us):
    """One `Live` of the parts' stores, in the parts' order."""
    offsets = np.cumsum([0] + [len(part.store_ids) for part in parts[:-1]])
    return Live(now_us=parts[0].now_us if parts else now_us,
                store_ids=np.concatenate([part.store_ids for part in parts]),
                incident_store=np.concatenate([part.incident_store + offset
                                               for part, offset in zip(parts, offsets)]),
                **{name: np.concatenate([getattr(part, name) for part in parts])
                   for name in _CHUNK_FIELDS if name != "incident_store"})


def _compute(polls, hours, zones, since, now_us):
    # Business time from each store's `since` on (no report windows to cover before it).
    inputs = ReportInputs(polls, hours, zones, now_us, since=since, lookback_us=0)
    n = inputs.n_stores
    since_us = inputs.since_us if inputs.since_us is not None else np.full(n, now_us)
    since_us = np.minimum(since_us, now_us)
    # Stores are independent given `now`: a chunk of about CHUNK_POLLS polls at a time keeps
    # the temporary arrays of 182 M polls (the first ingest of a million stores) bounded.
    parts = [_chunk(inputs, first, last, since_us[first:last])
             for first, last in store_chunks(inputs.order.polls_before, CHUNK_POLLS)]
    joined = {name: np.concatenate([part[name] for part in parts]) if parts else
              np.zeros(0, dtype=bool if name in ("open_now", "counted_active", "incident_open")
                       else np.int64) for name in _CHUNK_FIELDS}
    return Live(now_us=inputs.now_us, store_ids=inputs.store_ids, **joined)


_CHUNK_FIELDS = ("open_now", "counted_us", "counted_active", "incident_store", "incident_start",
                 "incident_end", "incident_open", "next_change_us")


def _chunk(inputs, first, last, since_us):
    """`Live`'s arrays for the stores of codes ``first .. last - 1`` (incident stores as
    codes of all stores)."""
    observed = inputs.observed(first, last)
    n = last - first
    stores = np.arange(n)
    timeline = observed.timeline
    open_now = observed.business.contains(
        timeline.key(stores, np.full(n, inputs.now_us, dtype=np.int64)))

    has = np.bincount(observed.store, minlength=n) > 0
    counted_us = np.full(n, NO_INSTANT, dtype=np.int64)
    counted_active = np.zeros(n, dtype=bool)
    latest = np.searchsorted(observed.store, stores[has], side="right") - 1
    counted_us[has] = observed.instant[latest]
    counted_active[has] = observed.active[latest]

    # The next instant after `now` where business time begins or ends: until then, a store
    # without new polls keeps its state and incidents (a day on, it is looked at anyway).
    iv_store, iv_start, iv_end = observed.intervals
    later = iv_end > inputs.now_us
    change = np.where(iv_start > inputs.now_us, iv_start, iv_end)[later]
    next_change_us = np.full(n, inputs.now_us + DAY_US, dtype=np.int64)
    # Intervals are disjoint and sorted by store then start: a store's first later one holds
    # its next change.
    changing, at = np.unique(iv_store[later], return_index=True)
    next_change_us[changing] = np.minimum(change[at], inputs.now_us + DAY_US)

    _, segments = stretches(observed, since_us, inputs.now_us)
    down = ~segments.active
    store, start, end = segments.store[down], segments.start_us[down], segments.end_us[down]
    return {"open_now": open_now, "counted_us": counted_us, "counted_active": counted_active,
            "incident_store": store.astype(np.int64) + first, "incident_start": start,
            "incident_end": end, "incident_open": (end == inputs.now_us) & open_now[store],
            "next_change_us": next_change_us}


def states(open_now, counted_us, counted_active, latest_us, now_us, silent_after_us):
    """Each store's state at `now`: closed outside business time; silent when its latest
    poll is older than `silent_after_us` (or no poll was ever in business time, so there is
    nothing to go by); else up or down as its latest observation in business time says."""
    silent = (now_us - latest_us > silent_after_us) | (counted_us == NO_INSTANT)
    return np.where(~open_now, CLOSED, np.where(silent, SILENT,
                                                np.where(counted_active, UP, DOWN)))
