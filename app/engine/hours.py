"""Business time of each store as disjoint UTC intervals (docs/report.md, "Business hours").

Instants are int64 microseconds since the epoch, UTC; stores are integer codes 0..n-1.
"""

import numpy as np
import pandas as pd

from .zones import DAY_US

SECOND_US = 1_000_000
END_OF_DAY_S = 86_399  # an end of 23:59:59 means 24:00
# Weekday (0 = Monday) of day 0, 1970-01-01, a Thursday.
_EPOCH_WEEKDAY = 3


def local_date_range(first_needed_us, now_us, zone_codes, clock):
    """Per store, the first and last local date (days since epoch) that can hold its hours.

    A business interval starting on local date ``d`` ends before ``d + 2`` (it lasts at most
    24 h, shifted by at most one DST change), so starting a day before the local date of the
    store's earliest needed instant and ending a day after `now` covers every interval that
    can contain an observation or meet a window.
    """
    local_first = clock.to_local(zone_codes, first_needed_us)
    local_now = clock.to_local(zone_codes, np.full(len(zone_codes), now_us, dtype=np.int64))
    return local_first // DAY_US - 1, local_now // DAY_US + 1


def weekly_spans_on_dates(store, day_of_week, start_s, end_s, *, first_date, last_date):
    """Expand weekly hours rows onto every matching local date in each store's date range.

    Parameters
    ----------
    store, day_of_week, start_s, end_s : ndarray
        One entry per hours row: store code, weekday (0 = Monday), start and end in seconds
        after local midnight.
    first_date, last_date : ndarray
        Per store code, the local date range (days since epoch), inclusive.

    Returns
    -------
    store, start_wall_us, end_wall_us : ndarray
        One entry per (row, date), in local wall microseconds. An end not after the start
        (once 23:59:59 reads as 24:00) runs into the next day; ``start == end`` is 24 h.
    """
    lo, hi = first_date[store], last_date[store]
    first = lo + (day_of_week - (lo + _EPOCH_WEEKDAY)) % 7
    count = np.maximum(0, (hi - first) // 7 + 1)
    row = np.repeat(np.arange(len(store)), count)
    week = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    date_us = (first[row] + 7 * week) * DAY_US

    end_s = np.where(end_s == END_OF_DAY_S, 86_400, end_s)
    end_s = np.where(end_s <= start_s, end_s + 86_400, end_s)
    return (store[row], date_us + start_s[row] * SECOND_US, date_us + end_s[row] * SECOND_US)


def merge_intervals(store, start, end):
    """Union of each store's intervals: sorted, disjoint, and touching ones joined.

    Returns ``(store, start, end)`` sorted by store, then start.
    """
    if len(store) == 0:
        return store, start, end
    # Each store's intervals laid end to end on one int64 axis (as `axis.Timeline` does):
    # one sort orders them by store then start, and one running maximum gives how far the
    # intervals so far reach within each store (a store's keys exceed every earlier one's).
    low = int(start.min())
    width = max(int(end.max()), int(start.max())) - low + 1
    if (int(store.max()) + 1) * width >= 2**62:
        return _merge_intervals_by_groups(store, start, end)
    base = store.astype(np.int64) * width - low
    order = np.argsort(base + start, kind="stable")
    store, start, end, base = store[order], start[order], end[order], base[order]
    reach = np.maximum.accumulate(base + end)
    return _joined(store, start, end, base + start, reach)


def _merge_intervals_by_groups(store, start, end):
    """`merge_intervals` for time ranges too long to lay end to end."""
    order = np.lexsort((start, store))
    store, start, end = store[order], start[order], end[order]
    reach = pd.Series(end).groupby(store).cummax().to_numpy()
    return _joined(store, start, end, start, reach)


def _joined(store, start, end, start_key, reach):
    """Blocks of sorted intervals: a new one wherever the store changes or an interval
    starts after the reach (`reach`, on the axis of `start_key`) of those before it."""
    new_block = np.ones(len(store), dtype=bool)
    new_block[1:] = (store[1:] != store[:-1]) | (start_key[1:] > reach[:-1])
    heads = np.flatnonzero(new_block)
    return store[heads], start[heads], np.maximum.reduceat(end, heads)


def business_intervals(n_stores, *, zone_codes, clock, first_obs_us, hours, now_us,
                       lookback_us):
    """Business time `B(s)` of every store, as merged UTC intervals.

    Parameters
    ----------
    n_stores : int
    zone_codes : ndarray of int
        Per store, the code of its zone in `clock`.
    clock : ZoneClock
        Offsets of the zones, from before the earliest observation to after `now`.
    first_obs_us : ndarray of int64
        Per store, its earliest observation [µs, UTC].
    hours : dict of ndarray
        ``store``, ``day_of_week``, ``start_s``, ``end_s``: the hours rows of these stores.
    now_us : int
        The report's `now` [µs, UTC].
    lookback_us : int
        How far before `now` business time must be known (the longest window plus slack).

    Returns
    -------
    store, start_us, end_us : ndarray
        Disjoint intervals sorted by store then start. A store without hours rows is open
        24x7: one interval covering all its observations and every window.
    """
    first_needed = np.minimum(first_obs_us, now_us - lookback_us)
    first_date, last_date = local_date_range(first_needed, now_us, zone_codes, clock)
    store, start_wall, end_wall = weekly_spans_on_dates(
        hours["store"], hours["day_of_week"], hours["start_s"], hours["end_s"],
        first_date=first_date, last_date=last_date)
    start = clock.to_utc(zone_codes[store], start_wall)
    end = clock.to_utc(zone_codes[store], end_wall)
    # A span that a clock change makes empty contributes nothing.
    nonempty = end > start
    store, start, end = store[nonempty], start[nonempty], end[nonempty]

    always_open = np.setdiff1d(np.arange(n_stores), hours["store"])
    store = np.concatenate([store, always_open])
    start = np.concatenate([start, first_needed[always_open] - DAY_US])
    end = np.concatenate([end, np.full(len(always_open), now_us + 2 * DAY_US, dtype=np.int64)])
    return merge_intervals(store, start, end)
