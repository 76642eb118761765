"""The report of docs/report.md: uptime and downtime within business hours, per store and window.

`build_report` takes plain data frames and returns one; it never touches a database, a file
or Flask. Durations are seconds (`*_s` columns) until `export` converts them.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .axis import BusinessMeasure, Timeline
from .columns import REPORT_COLUMNS
from .hours import business_intervals
from .inputs import PollOrder, StoreCodes, hours_arrays, runs, store_zones
from .status import governed_spans
from .zones import DAY_US, ZoneClock

HOUR_US = 3_600_000_000
WINDOWS_US = {"hour": HOUR_US, "day": 24 * HOUR_US, "week": 7 * 24 * HOUR_US}
# Business time is built from 8 days before `now` (docs/report.md, "Business hours"): the
# week window plus a day.
LOOKBACK_US = 8 * 24 * HOUR_US
CHUNK_POLLS = 250_000
COLUMNS = [column.engine_name for column in REPORT_COLUMNS]


@dataclass
class ReportResult:
    """The report rows (one per store with an observation, sorted by store_id) and warnings."""

    frame: pd.DataFrame
    warnings: pd.DataFrame  # store_id, message
    now_us: int | None = None  # the `now` the windows end at [µs, UTC]; None without polls


def build_report(polls, hours, zones, now_us=None, threads=1):
    """Compute the report.

    Parameters
    ----------
    polls : DataFrame
        ``store_id`` (str or categorical), ``timestamp_us`` (int64, µs since epoch, UTC),
        ``active`` (bool). No two rows share a store and instant.
    hours : DataFrame
        ``store_id``, ``day_of_week`` (0 = Monday), ``start_local_s``, ``end_local_s``
        (seconds after local midnight).
    zones : DataFrame
        ``store_id``, ``timezone_str``; at most one row per store.
    now_us : int, optional
        The report's `now` [µs, UTC]: the latest poll (the default) or later.
    threads : int, optional
        How many chunks of stores to compute at once (numpy and pandas release the GIL in
        their loops, so threads share the cores without copying the data).

    Returns
    -------
    ReportResult
    """
    if len(polls) == 0:
        return ReportResult(pd.DataFrame(columns=["store_id", *COLUMNS]),
                            pd.DataFrame(columns=["store_id", "message"]))
    inputs = ReportInputs(polls, hours, zones, now_us, stores_by_id=False)
    # Stores are independent given `now`: work through them in chunks of about
    # CHUNK_POLLS polls, so that every temporary array stays small enough for the CPU
    # caches. One pass over 25 million polls at once is half as fast per poll; chunks of
    # 250,000 rather than 500,000 keep two threads busy to the end at 2.5 million polls
    # (0.17 -> 0.15 s) and cost nothing at 25 million.
    seconds = np.zeros((len(COLUMNS), inputs.n_stores))

    def compute(chunk):
        first, last = chunk
        seconds[:, first:last] = _report_chunk(inputs.observed(first, last), inputs.now_us)

    chunks = store_chunks(inputs.order.polls_before, CHUNK_POLLS)
    if threads > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(min(threads, len(chunks)), thread_name_prefix="engine") as pool:
            list(pool.map(compute, chunks))  # list(): raise what a chunk raised
    else:
        for chunk in chunks:
            compute(chunk)
    by_id = np.argsort(inputs.store_ids.astype(str), kind="stable")
    frame = pd.DataFrame({"store_id": inputs.store_ids[by_id],
                          **dict(zip(COLUMNS, seconds[:, by_id]))})
    warnings = inputs.warnings.sort_values("store_id", key=lambda ids: ids.astype(str),
                                           kind="stable", ignore_index=True)
    return ReportResult(frame, warnings, int(inputs.now_us))


def store_chunks(polls_before, size):
    """Ranges ``[first, last)`` of store codes holding about `size` polls each.

    `polls_before[s]` is the number of polls of the stores before store `s`.
    """
    n_stores = len(polls_before) - 1
    cuts = np.searchsorted(polls_before, np.arange(0, polls_before[-1], size), side="right") - 1
    bounds = np.unique(np.concatenate([cuts, [n_stores]]))
    return list(zip(bounds[:-1], bounds[1:]))


def _report_chunk(observed, now_us):
    """Uptime and downtime [s] of one chunk's stores, one row per `COLUMNS` entry."""
    measured_us = {}
    for window, length in WINDOWS_US.items():
        measured_us["uptime", window], measured_us["downtime", window] = uptime_by_window(
            observed, window_start=now_us - length, window_end=now_us)
    return np.array([measured_us[column.kind, column.window] / 1e6
                     for column in REPORT_COLUMNS])


class ReportInputs:
    """The engine's input frames as arrays: stores as codes sorted by `store_id`, their
    zones and hours rows, and `now`; `observed` gives a range of stores' observations in
    business time. Shared by the report and the per-store timelines."""

    def __init__(self, polls, hours, zones, now_us=None, stores_by_id=True, since=None,
                 lookback_us=LOOKBACK_US):
        """`stores_by_id`: number the stores in the order of their ids as text, else in the
        order the polls give them (`StoreCodes`). `since` (``store_id``, ``since_us``):
        business time of those stores is needed from that instant on, when earlier than
        their first poll (live incidents reach back before it). `lookback_us`: business
        time is needed from this long before `now` too (the report's windows)."""
        self.lookback_us = lookback_us
        stores = StoreCodes(polls["store_id"], by_id=stores_by_id)
        self.store_ids = stores.ids
        self.n_stores = len(self.store_ids)
        self.instant = polls["timestamp_us"].to_numpy(dtype=np.int64)
        self.active = polls["active"].to_numpy(dtype=bool)
        latest = int(self.instant.max())
        self.now_us = latest if now_us is None else int(now_us)
        if self.now_us < latest:
            raise ValueError("now_us: earlier than the latest poll")
        self.order = PollOrder(stores, self.instant)
        self.zone_codes, self.zones, self.warnings = store_zones(stores, zones)
        self.since_us = None
        if since is not None and len(since):
            self.since_us = np.full(self.n_stores, np.iinfo(np.int64).max, dtype=np.int64)
            position = stores.of(since["store_id"])
            known = position >= 0
            self.since_us[position[known]] = since["since_us"].to_numpy(dtype=np.int64)[known]
        # Local dates are needed from before the earliest observation (or the lookback) to
        # after `now`; a few days either side cover the wall times of those dates.
        earliest = min(int(self.instant.min()), self.now_us - lookback_us,
                       *([] if self.since_us is None else [int(self.since_us.min())]))
        self.clock = ZoneClock(self.zones, earliest - 4 * DAY_US, self.now_us + 4 * DAY_US)
        self.hours = hours_arrays(stores, hours)

    def observed(self, first, last):
        """`Observed` of the stores with codes ``first .. last - 1`` (renumbered from 0)."""
        rows = self.order.rows(first, last)
        hours_from, hours_to = np.searchsorted(self.hours["store"], [first, last])
        hours = {name: column[hours_from:hours_to] - (first if name == "store" else 0)
                 for name, column in self.hours.items()}
        return Observed(n_stores=last - first, zone_codes=self.zone_codes[first:last],
                        clock=self.clock, store=self.order.stores(first, last),
                        instant=self.instant[rows], active=self.active[rows], hours=hours,
                        now_us=self.now_us,
                        since_us=None if self.since_us is None else self.since_us[first:last],
                        lookback_us=self.lookback_us)


class Observed:
    """Business time `B(s)` of stores ``0..n_stores-1`` and their observations in `O(s)`,
    each with the span it governs (docs/report.md, "Between polls").

    Attributes: `intervals` (store, start_us, end_us: merged business intervals),
    `timeline` and `business` (a `Timeline` and the `BusinessMeasure` of those intervals),
    and the observations in `O(s)` sorted by store then time: `store`, `instant`, `active`,
    `key` (on the timeline), `span_start`, `span_end` (found when first asked for).
    """

    def __init__(self, *, n_stores, zone_codes, clock, store, instant, active, hours, now_us,
                 since_us=None, lookback_us=LOOKBACK_US):
        # Polls are sorted by store then instant; every store has at least one.
        self.n_stores = n_stores
        first_obs = instant[np.searchsorted(store, np.arange(n_stores))]
        if since_us is not None:  # business time wanted from before the first poll
            first_obs = np.minimum(first_obs, since_us)
        iv_store, iv_start, iv_end = business_intervals(
            n_stores, zone_codes=zone_codes, clock=clock, first_obs_us=first_obs, hours=hours,
            now_us=now_us, lookback_us=lookback_us)
        self.intervals = iv_store, iv_start, iv_end
        self.timeline = _timeline(first_obs, now_us, intervals=self.intervals)
        self.business = BusinessMeasure(self.timeline.key(iv_store, iv_start),
                                        self.timeline.key(iv_store, iv_end))
        key = self.timeline.key(store, instant)
        inside = self.business.contains(key)
        self.store, self.instant, self.active = store[inside], instant[inside], active[inside]
        self.key = key[inside]

    # The report reads span starts off `key` (`Governed`); only the timelines need the
    # spans as instants, so they are found when first asked for.
    @cached_property
    def _spans(self):
        return governed_spans(self.store, self.instant)

    @property
    def span_start(self):
        """Where each observation's span starts [µs, UTC] (int64 min for a store's first)."""
        return self._spans[0]

    @property
    def span_end(self):
        """Where each observation's span ends [µs, UTC] (int64 max for a store's last)."""
        return self._spans[1]

    @cached_property
    def governed(self):
        return Governed(self)


def uptime_by_window(observed, *, window_start, window_end):
    """Per store, business time in ``[window_start, window_end)`` governed by active and by
    inactive observations [µs].

    Measured along business time itself: `Governed` holds, at the start of each
    observation's span, the business time before it and the part of that governed by
    active observations. Between two such points the active part grows with the business
    time or not at all, so each window costs one lookup per store, not one per poll.
    """
    governed = observed.governed
    stores = np.arange(observed.n_stores)
    timeline, business = observed.timeline, observed.business
    begin = business.up_to(timeline.key(stores, np.full(len(stores), window_start)))
    end = business.up_to(timeline.key(stores, np.full(len(stores), window_end)))
    up = governed.active_up_to(end) - governed.active_up_to(begin)
    # A store's spans cover its whole time range, so whatever is not up is down; a store
    # without observations in business time has neither.
    has = governed.has_observations
    return np.where(has, up, 0).astype(np.float64), np.where(has, end - begin - up, 0).astype(
        np.float64)


class Governed:
    """Business time along the `Timeline` split by the status governing it.

    `business_before[i]` is the business time before the span of observation ``i`` starts
    (a store's first span starts where the store's range does), `active_before[i]` the part
    of it governed by active observations. Both only grow along the axis, over all stores.
    """

    def __init__(self, observed):
        timeline, business, store = observed.timeline, observed.business, observed.store
        self.business_before = business.up_to(_span_start_keys(timeline, store, observed.key))
        # A span ends where the next one starts (the last one: after all business time).
        following = np.append(self.business_before[1:], business.before[-1])
        active_part = np.where(observed.active, following - self.business_before, 0)
        self.active_before = np.cumsum(active_part) - active_part
        self.active = observed.active
        self.has_observations = np.bincount(store, minlength=observed.n_stores) > 0

    def active_up_to(self, business_point):
        """Business time governed by active observations before each point (given as
        business time before it, as `BusinessMeasure.up_to` returns)."""
        if len(self.business_before) == 0:
            return np.zeros(len(business_point), dtype=np.int64)
        i = np.maximum(np.searchsorted(self.business_before, business_point, side="right") - 1,
                       0)
        return self.active_before[i] + np.where(self.active[i],
                                                business_point - self.business_before[i], 0)


def _span_start_keys(timeline, store, key):
    """Where each observation's span starts on the `Timeline` (its store's range start for
    a store's first one), from the observations' keys: as a store's instants all move by
    the same offset, the midpoint of two keys is the key of the two instants' midpoint,
    the rounding included (`governed_spans`)."""
    start = np.empty_like(key)
    start[1:] = (key[:-1] + key[1:]) // 2
    first, first_store = runs(store)
    start[first] = timeline.range_start(first_store)
    return start


def _timeline(first_obs, now_us, *, intervals):
    """A `Timeline` whose store ranges hold every observation, business interval (`intervals`:
    ``store, start, end``) and window. `first_obs` has one entry per store."""
    iv_store, iv_start, iv_end = intervals
    lo = np.minimum(first_obs, now_us - WINDOWS_US["week"])
    np.minimum.at(lo, iv_store, iv_start)
    hi = np.full(len(first_obs), now_us, dtype=np.int64)
    np.maximum.at(hi, iv_store, iv_end)
    return Timeline(lo, hi + 1)
