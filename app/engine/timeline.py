"""The last week of a few stores as the report saw it (docs/report.md, "Timeline and incidents").

`build_timelines` runs the report's own steps (`ReportInputs`, `Observed`: business time,
observations in it, the span each governs) and, instead of summing per window, cuts the
week's business time into the stretches each observation governs. Totals come from the
report's `uptime_by_window`, so a timeline and the report's row cannot disagree.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .report import WINDOWS_US, ReportInputs, uptime_by_window
from .status import BusinessMeasure
from .zones import DAY_US, local_to_utc, utc_to_local

WEEK_US = WINDOWS_US["week"]


@dataclass
class Timelines:
    """The week ``[now - 7 d, now)`` of each store with a poll.

    Frames, each sorted by store then time, with instants in µs since the epoch (UTC):

    - `stores`: ``store_id``, ``timezone`` (the zone used), ``uptime_s``, ``downtime_s``
      (the report's `*_last_week`, in seconds);
    - `business`: ``store_id``, ``start_us``, ``end_us``: `B(s)` within the week;
    - `segments`: ``store_id``, ``start_us``, ``end_us``, ``active``: the business time in
      the week split by governing status, adjacent stretches of one status joined, so the
      inactive ones are the incidents.
    """

    now_us: int
    stores: pd.DataFrame
    business: pd.DataFrame
    segments: pd.DataFrame

    @property
    def window(self):
        return self.now_us - WEEK_US, self.now_us


def build_timelines(polls, hours, zones, now_us=None):
    """Business time, segments and totals of the last week for every store in `polls`.

    Parameters are those of `build_report`; pass only the rows of the stores wanted (all
    polls of a store, any age, as the report needs its observations before the week), and
    `now_us`, since `now` is the latest poll of *all* stores.

    Returns
    -------
    Timelines
    """
    if len(polls) == 0:
        raise ValueError("polls: no store to draw")
    inputs = ReportInputs(polls, hours, zones, now_us)
    observed = inputs.observed(0, inputs.n_stores)
    week_start, now = inputs.now_us - WEEK_US, inputs.now_us
    up, down = uptime_by_window(observed, week_start, now)

    iv_store, iv_start, iv_end = observed.intervals
    iv_start, iv_end = np.maximum(iv_start, week_start), np.minimum(iv_end, now)
    in_week = iv_end > iv_start
    iv_store, iv_start, iv_end = iv_store[in_week], iv_start[in_week], iv_end[in_week]
    segments = _segments(observed, iv_store, iv_start, iv_end, week_start, now)

    ids = inputs.store_ids
    stores = pd.DataFrame({"store_id": ids,
                           "timezone": [inputs.zones[c].key for c in inputs.zone_codes],
                           "uptime_s": up / 1e6, "downtime_s": down / 1e6})
    business = pd.DataFrame({"store_id": ids[iv_store], "start_us": iv_start,
                             "end_us": iv_end})
    seg_store, seg_start, seg_end, seg_active = segments
    segments = pd.DataFrame({"store_id": ids[seg_store], "start_us": seg_start,
                             "end_us": seg_end, "active": seg_active})
    return Timelines(now, stores, business, segments)


def _segments(observed, iv_store, iv_start, iv_end, week_start, now):
    """Each business interval of the week cut where the governing observation changes.

    The spans of a store's observations tile the whole time axis, so the spans meeting an
    interval are a run of consecutive observations; one `searchsorted` per side finds it.
    Stores without observations in business time get no segments.
    """
    timeline = observed.timeline
    store, active = observed.store, observed.active
    span_start = np.clip(observed.span_start, week_start, now)
    span_end = np.clip(observed.span_end, week_start, now)
    has_obs = np.bincount(store, minlength=observed.n_stores) > 0
    keep = has_obs[iv_store]
    iv_store, iv_start, iv_end = iv_store[keep], iv_start[keep], iv_end[keep]

    # On the shared axis, clipped span starts and ends are sorted (by store, then time).
    first = np.searchsorted(timeline.key(store, span_end), timeline.key(iv_store, iv_start),
                            side="right")
    after = np.searchsorted(timeline.key(store, span_start), timeline.key(iv_store, iv_end),
                            side="left")
    count = np.maximum(after - first, 0)
    interval = np.repeat(np.arange(len(iv_store)), count)
    obs = np.repeat(first - (np.cumsum(count) - count), count) + np.arange(count.sum())
    start = np.maximum(iv_start[interval], span_start[obs])
    end = np.minimum(iv_end[interval], span_end[obs])
    piece_store, piece_active = iv_store[interval], active[obs]

    # Join a piece to the one before when it continues it: same store, status, no gap.
    joins = np.zeros(len(start), dtype=bool)
    joins[1:] = ((piece_store[1:] == piece_store[:-1]) & (piece_active[1:] == piece_active[:-1])
                 & (start[1:] == end[:-1]))
    heads = np.flatnonzero(~joins)
    ends = np.append(heads[1:], len(start))[:len(heads)] - 1
    return piece_store[heads], start[heads], end[ends], piece_active[heads]


def local_days(segments, zone, week_start, now):
    """Business time and uptime per local calendar day of one store's segments.

    Parameters
    ----------
    segments : DataFrame
        One store's ``start_us``, ``end_us``, ``active``, as in `Timelines.segments`.
    zone : ZoneInfo
    week_start, now : int
        The window [µs, UTC].

    Returns
    -------
    DataFrame
        ``date`` (local, ISO text), ``start_us``, ``end_us`` (the day within the window),
        ``business_s``, ``uptime_s``; one row per local date the window touches.
    """
    first_day = utc_to_local(np.array([week_start]), zone)[0] // DAY_US
    last_day = utc_to_local(np.array([now - 1]), zone)[0] // DAY_US
    days = np.arange(first_day, last_day + 2)
    midnights = np.clip(local_to_utc(days * DAY_US, zone), week_start, now)
    start = segments["start_us"].to_numpy(dtype=np.int64)
    end = segments["end_us"].to_numpy(dtype=np.int64)
    active = segments["active"].to_numpy(dtype=bool)
    # Cumulative measure of all segments and of the active ones, read at each midnight.
    every, up = BusinessMeasure(start, end), BusinessMeasure(start[active], end[active])
    business = np.diff(every.up_to(midnights)) / 1e6
    uptime = np.diff(up.up_to(midnights)) / 1e6
    dates = days[:-1].astype("datetime64[D]").astype(str)
    return pd.DataFrame({"date": dates, "start_us": midnights[:-1], "end_us": midnights[1:],
                         "business_s": business, "uptime_s": uptime})
