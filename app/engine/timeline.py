"""The last week of a few stores as the report saw it (docs/report.md, "Timeline and incidents").

`build_timelines` runs the report's own steps (`ReportInputs`, `Observed`: business time,
observations in it, the span each governs) and, instead of summing per window, cuts the
week's business time into the stretches each observation governs. Totals come from the
report's `uptime_by_window`, so a timeline and the report's row cannot disagree.
"""

from dataclasses import dataclass

import numpy as np

from .axis import BusinessMeasure
from .inputs import run_rows
from .report import WINDOWS_US, ReportInputs, uptime_by_window
from .zones import DAY_US, local_to_utc, utc_to_local

WEEK_US = WINDOWS_US["week"]


@dataclass(frozen=True)
class Stretches:
    """Stretches of time of several stores, sorted by store then start [µs, UTC].

    `store` holds codes into `Timelines.store_ids`; `active` is None for business time.
    """

    store: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    active: np.ndarray | None = None

    def of(self, code):
        """The stretches of one store code."""
        lo, hi = np.searchsorted(self.store, [code, code + 1])
        return Stretches(self.store[lo:hi], self.start_us[lo:hi], self.end_us[lo:hi],
                         None if self.active is None else self.active[lo:hi])


@dataclass(frozen=True)
class Timelines:
    """The week ``[now - 7 d, now)`` of each store with a poll (plain arrays: these serve
    single requests, where a data frame's overhead would cost more than the work).

    Per store code, sorted by `store_id`: `store_ids`, `timezone` (the zone used),
    `uptime_s` and `downtime_s` (the report's `*_last_week`, in seconds). `business` is
    `B(s)` within the week; `segments` splits it by governing status, adjacent stretches of
    one status joined, so the inactive ones are the incidents.
    """

    now_us: int
    store_ids: np.ndarray
    timezone: list
    uptime_s: np.ndarray
    downtime_s: np.ndarray
    business: Stretches
    segments: Stretches

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
    up, down = uptime_by_window(observed, window_start=week_start, window_end=now)

    business, segments = stretches(observed, week_start, now)
    return Timelines(
        now_us=now, store_ids=inputs.store_ids,
        timezone=[inputs.zones[code].key for code in inputs.zone_codes],
        uptime_s=up / 1e6, downtime_s=down / 1e6, business=business, segments=segments)


def stretches(observed, window_start, window_end):
    """Business time of `observed`'s stores within ``[window_start, window_end)``, and its
    segments (`Timelines`): the week of the timelines, or the spans of live incidents
    (app.live), where `window_start` is an array with one start per store (each within its
    store's range of the `Timeline`)."""
    start = np.asarray(window_start)
    iv_store, iv_start, iv_end = observed.intervals
    iv_start = np.maximum(iv_start, start[iv_store] if start.ndim else start)
    iv_end = np.minimum(iv_end, window_end)
    inside = iv_end > iv_start
    business = Stretches(iv_store[inside], iv_start[inside], iv_end[inside])
    return business, _segments(observed, business,
                               start[observed.store] if start.ndim else start, window_end)


def _segments(observed, business, week_start, now):
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
    keep = has_obs[business.store]
    iv_store, iv_start, iv_end = (business.store[keep], business.start_us[keep],
                                  business.end_us[keep])

    # On the shared axis, clipped span starts and ends are sorted (by store, then time).
    first = np.searchsorted(timeline.key(store, span_end), timeline.key(iv_store, iv_start),
                            side="right")
    after = np.searchsorted(timeline.key(store, span_start), timeline.key(iv_store, iv_end),
                            side="left")
    count = np.maximum(after - first, 0)
    interval = np.repeat(np.arange(len(iv_store)), count)
    obs = run_rows(first, count)
    start = np.maximum(iv_start[interval], span_start[obs])
    end = np.minimum(iv_end[interval], span_end[obs])
    piece_store, piece_active = iv_store[interval], active[obs]

    # Join a piece to the one before when it continues it: same store, status, no gap.
    joins = np.zeros(len(start), dtype=bool)
    joins[1:] = ((piece_store[1:] == piece_store[:-1]) & (piece_active[1:] == piece_active[:-1])
                 & (start[1:] == end[:-1]))
    heads = np.flatnonzero(~joins)
    ends = np.append(heads[1:], len(start))[:len(heads)] - 1
    return Stretches(piece_store[heads], start[heads], end[ends], piece_active[heads])


def local_days(start_us, end_us, active, zone, week_start, now):
    """Business time and uptime per local calendar day of one store's segments.

    Parameters
    ----------
    start_us, end_us, active : ndarray
        One store's segments, as in `Timelines.segments`.
    zone : ZoneInfo
    week_start, now : int
        The window [µs, UTC].

    Returns
    -------
    dict of ndarray
        ``date`` (local, ISO text), ``start_us``, ``end_us`` (the day within the window),
        ``business_s``, ``uptime_s``; one entry per local date the window touches.
    """
    first_day, last_day = utc_to_local(np.array([week_start, now - 1]), zone) // DAY_US
    days = np.arange(first_day, last_day + 2)
    midnights = np.clip(local_to_utc(days * DAY_US, zone), week_start, now)
    # Cumulative measure of all segments and of the active ones, read at each midnight.
    every = BusinessMeasure(start_us, end_us)
    up = BusinessMeasure(start_us[active], end_us[active])
    return {"date": days[:-1].astype("datetime64[D]").astype(str).tolist(),
            "start_us": midnights[:-1], "end_us": midnights[1:],
            "business_s": np.diff(every.up_to(midnights)) / 1e6,
            "uptime_s": np.diff(up.up_to(midnights)) / 1e6}
