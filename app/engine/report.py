"""The report of docs/report.md: uptime and downtime within business hours, per store and window.

`build_report` takes plain data frames and returns one; it never touches a database, a file
or Flask. Durations are seconds (`*_s` columns) until `export` converts them.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .hours import business_intervals
from .status import BusinessMeasure, Timeline, governed_spans
from .zones import DEFAULT_ZONE, resolve_zones

HOUR_US = 3_600_000_000
WINDOWS_US = {"hour": HOUR_US, "day": 24 * HOUR_US, "week": 7 * 24 * HOUR_US}
# Business time is built from 8 days before `now` (docs/report.md, "Business hours"): the
# week window plus a day.
LOOKBACK_US = 8 * 24 * HOUR_US
CHUNK_POLLS = 500_000
COLUMNS = [f"{kind}_last_{window}_s" for kind in ("uptime", "downtime") for window in WINDOWS_US]


@dataclass
class ReportResult:
    """The report rows (one per store with an observation, sorted by store_id) and warnings."""

    frame: pd.DataFrame
    warnings: pd.DataFrame  # store_id, message


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
    inputs = ReportInputs(polls, hours, zones, now_us)
    # Stores are independent given `now`: work through them in chunks of about
    # CHUNK_POLLS polls, so that every temporary array stays small enough for the CPU
    # caches. One pass over 25 million polls at once is half as fast per poll.
    seconds = np.zeros((len(COLUMNS), inputs.n_stores))

    def compute(chunk):
        first, last = chunk
        seconds[:, first:last] = _report_chunk(inputs.observed(first, last), inputs.now_us)

    chunks = _store_chunks(inputs.order.polls_before, CHUNK_POLLS)
    if threads > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(min(threads, len(chunks)), thread_name_prefix="engine") as pool:
            list(pool.map(compute, chunks))  # list(): raise what a chunk raised
    else:
        for chunk in chunks:
            compute(chunk)
    frame = pd.DataFrame({"store_id": inputs.store_ids, **dict(zip(COLUMNS, seconds))})
    return ReportResult(frame, inputs.warnings)


def _store_chunks(polls_before, size):
    """Ranges ``[first, last)`` of store codes holding about `size` polls each.

    `polls_before[s]` is the number of polls of the stores before store `s`.
    """
    n_stores = len(polls_before) - 1
    cuts = np.searchsorted(polls_before, np.arange(0, polls_before[-1], size), side="right") - 1
    bounds = np.unique(np.concatenate([cuts, [n_stores]]))
    return list(zip(bounds[:-1], bounds[1:]))


def _report_chunk(observed, now_us):
    """Uptime and downtime [s] of one chunk's stores, one row per `COLUMNS` entry."""
    result = {}
    for window, length in WINDOWS_US.items():
        up, down = uptime_by_window(observed, now_us - length, now_us)
        result[f"uptime_last_{window}_s"] = up / 1e6
        result[f"downtime_last_{window}_s"] = down / 1e6
    return np.array([result[column] for column in COLUMNS])


class ReportInputs:
    """The engine's input frames as arrays: stores as codes sorted by `store_id`, their
    zones and hours rows, and `now`; `observed` gives a range of stores' observations in
    business time. Shared by the report and the per-store timelines."""

    def __init__(self, polls, hours, zones, now_us=None):
        stores = _StoreCodes(polls["store_id"])
        self.store_ids, self.store = stores.ids, stores.polls
        self.n_stores = len(self.store_ids)
        self.instant = polls["timestamp_us"].to_numpy(dtype=np.int64)
        self.active = polls["active"].to_numpy(dtype=bool)
        latest = int(self.instant.max())
        self.now_us = latest if now_us is None else int(now_us)
        if self.now_us < latest:
            raise ValueError("now_us: earlier than the latest poll")
        self.order = _PollOrder(self.store, self.instant, self.n_stores)
        self.zone_codes, self.zones, self.warnings = _store_zones(stores, zones)
        self.hours = _hours_of(stores, hours)

    def observed(self, first, last):
        """`Observed` of the stores with codes ``first .. last - 1`` (renumbered from 0)."""
        rows = self.order.rows(first, last)
        hours_from, hours_to = np.searchsorted(self.hours["store"], [first, last])
        hours = {name: column[hours_from:hours_to] - (first if name == "store" else 0)
                 for name, column in self.hours.items()}
        return Observed(last - first, self.zone_codes[first:last], self.zones,
                        self.store[rows] - first, self.instant[rows], self.active[rows],
                        hours, self.now_us)


class Observed:
    """Business time `B(s)` of stores ``0..n_stores-1`` and their observations in `O(s)`,
    each with the span it governs (docs/report.md, "Between polls").

    Attributes: `intervals` (store, start_us, end_us: merged business intervals),
    `timeline` and `business` (a `Timeline` and the `BusinessMeasure` of those intervals),
    and the observations in `O(s)` sorted by store then time: `store`, `instant`, `active`,
    `span_start`, `span_end`.
    """

    def __init__(self, n_stores, zone_codes, zones, store, instant, active, hours, now_us):
        # Polls are sorted by store then instant; every store has at least one.
        self.n_stores = n_stores
        first_obs = instant[np.searchsorted(store, np.arange(n_stores))]
        iv_store, iv_start, iv_end = business_intervals(
            n_stores, zone_codes, zones, first_obs, hours, now_us, LOOKBACK_US)
        self.intervals = iv_store, iv_start, iv_end
        self.timeline = _timeline(n_stores, first_obs, now_us, iv_store, iv_start, iv_end)
        self.business = BusinessMeasure(self.timeline.key(iv_store, iv_start),
                                        self.timeline.key(iv_store, iv_end))
        inside = self.business.contains(self.timeline.key(store, instant))
        self.store, self.instant, self.active = store[inside], instant[inside], active[inside]
        self.span_start, self.span_end = governed_spans(self.store, self.instant)


def uptime_by_window(observed, window_start, window_end):
    """Per store, business time in ``[window_start, window_end)`` governed by active and by
    inactive observations [µs].
    """
    timeline, business = observed.timeline, observed.business
    store, active = observed.store, observed.active
    span_start, span_end = observed.span_start, observed.span_end
    # Only observations whose span reaches into the window matter: for the last hour that
    # is one or two per store. Those of a store stay consecutive.
    meets = (span_end > window_start) & (span_start < window_end)
    store, active = store[meets], active[meets]
    offset = timeline.offset[store]
    before_start = business.up_to(np.clip(span_start[meets], window_start, window_end) + offset)
    # A span ends where the next one of its store starts; only each store's last span ends
    # elsewhere (at the window's end, once clipped).
    last = np.ones(len(store), dtype=bool)
    last[:-1] = store[1:] != store[:-1]
    before_end = np.empty_like(before_start)
    before_end[:-1] = before_start[1:]
    before_end[last] = business.up_to(
        np.clip(span_end[meets][last], window_start, window_end) + offset[last])
    measure = (before_end - before_start).astype(np.float64)
    n_stores = observed.n_stores
    up = np.bincount(store, weights=np.where(active, measure, 0.0), minlength=n_stores)
    down = np.bincount(store, weights=np.where(active, 0.0, measure), minlength=n_stores)
    return up, down


class _PollOrder:
    """Which polls belong to a range of stores, in time order.

    Databases usually return a store's polls together and in time order (SQLite in its
    primary-key order); then each store's polls are one run of the input, and the rows of
    a range of stores are found from the runs alone. Otherwise one stable sort of a
    combined int64 key orders everything (ten times faster than `np.lexsort`; the key fits
    unless the polls span centuries).
    """

    def __init__(self, store, instant, n_stores):
        count = np.bincount(store, minlength=n_stores)
        self.polls_before = np.concatenate([[0], np.cumsum(count)])
        new_store = store[1:] != store[:-1]
        run_start = np.concatenate([[0], np.flatnonzero(new_store) + 1])
        self._order = None
        if len(run_start) == n_stores and np.all((instant[1:] > instant[:-1]) | new_store):
            self._run_start = np.empty(n_stores, dtype=np.int64)
            self._run_start[store[run_start]] = run_start
            self._count = count
        else:
            first = instant.min()
            span = int(instant.max() - first) + 1
            if n_stores * span >= 2**62:
                self._order = np.lexsort((instant, store))
            else:
                self._order = np.argsort(store.astype(np.int64) * span + (instant - first),
                                         kind="stable")

    def rows(self, first, last):
        """Input positions of the polls of stores ``first .. last - 1``, sorted."""
        if self._order is not None:
            return self._order[self.polls_before[first]:self.polls_before[last]]
        count = self._count[first:last]
        shift = self._run_start[first:last] - (np.cumsum(count) - count)
        return np.repeat(shift, count) + np.arange(count.sum())


class _StoreCodes:
    """The report's stores (those with polls) sorted as strings, and each row's code.

    Columns may hold store ids as text or, as the snapshot gives them, as a categorical;
    categoricals sharing the polls' categories are mapped through their integer codes.
    """

    def __init__(self, store_id):
        if isinstance(store_id.dtype, pd.CategoricalDtype):
            self._categories = store_id.cat.categories
            codes = store_id.cat.codes.to_numpy()
            used = np.flatnonzero(np.bincount(codes, minlength=len(self._categories)))
            uniques = self._categories.to_numpy(dtype=object)[used]
        else:
            self._categories = None
            codes, uniques = pd.factorize(store_id)
            used = np.arange(len(uniques))
            uniques = np.asarray(uniques, dtype=object)
        order = np.argsort(uniques.astype(str), kind="stable")
        self.ids = uniques[order]
        # int32 codes halve the memory traffic of the widest column after the instants.
        self._code_of = np.full(len(self._categories) if self._categories is not None
                                else len(uniques), -1, dtype=np.int32)
        self._code_of[used[order]] = np.arange(len(order))
        self.polls = self._code_of[codes]

    def of(self, store_id):
        """Codes of another column's store ids; -1 for stores without polls."""
        if self._categories is not None and isinstance(store_id.dtype, pd.CategoricalDtype) \
                and store_id.cat.categories.equals(self._categories):
            codes = store_id.cat.codes.to_numpy()
            return np.where(codes >= 0, self._code_of[codes], -1)
        return pd.Index(self.ids).get_indexer(np.asarray(store_id, dtype=object))


def _store_zones(stores, zones):
    """Each store's zone: its row's zone if known, else the default (with a warning)."""
    store_ids = stores.ids
    names = np.full(len(store_ids), DEFAULT_ZONE, dtype=object)
    has_row = np.zeros(len(store_ids), dtype=bool)
    position = stores.of(zones["store_id"])
    known = position >= 0
    names[position[known]] = zones["timezone_str"].to_numpy(dtype=object)[known]
    has_row[position[known]] = True
    codes, zone_list, unknown = resolve_zones(names)
    flagged = unknown & has_row
    warnings = pd.DataFrame({
        "store_id": store_ids[flagged],
        "message": [f"unknown timezone {name!r}; using {DEFAULT_ZONE}"
                    for name in names[flagged]],
    })
    return codes, zone_list, warnings


def _hours_of(stores, hours):
    """Hours rows of the report's stores, as arrays sorted by store code."""
    position = stores.of(hours["store_id"])
    keep = np.flatnonzero(position >= 0)
    keep = keep[np.argsort(position[keep], kind="stable")]
    return {
        "store": position[keep].astype(np.int64),
        "day_of_week": hours["day_of_week"].to_numpy(dtype=np.int64)[keep],
        "start_s": hours["start_local_s"].to_numpy(dtype=np.int64)[keep],
        "end_s": hours["end_local_s"].to_numpy(dtype=np.int64)[keep],
    }


def _timeline(n_stores, first_obs, now_us, iv_store, iv_start, iv_end):
    """A `Timeline` whose store ranges hold every observation, interval and window."""
    lo = np.minimum(first_obs, now_us - WINDOWS_US["week"])
    np.minimum.at(lo, iv_store, iv_start)
    hi = np.full(n_stores, now_us, dtype=np.int64)
    np.maximum.at(hi, iv_store, iv_end)
    return Timeline(lo, hi + 1)
