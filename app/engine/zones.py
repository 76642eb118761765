"""Time zones: resolve names, and convert between UTC and local wall time.

Instants and wall times are int64 microseconds since 1970-01-01 (wall times as if the local
clock were UTC). This module is the only place where local time meets UTC.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

DEFAULT_ZONE = "America/Chicago"
DAY_US = 86_400_000_000
SECOND_US = 1_000_000


def resolve_zones(names):
    """Map zone names to zones, falling back to `DEFAULT_ZONE` for unknown or empty names.

    Parameters
    ----------
    names : array of str
        IANA names as given by the data; may contain anything.

    Returns
    -------
    codes : ndarray of int
        Per name, an index into `zones`.
    zones : list of ZoneInfo
        The distinct zones in use.
    unknown : ndarray of bool
        Per name, True where the name was not a known zone.
    """
    # Hashing (factorize) rather than sorting (np.unique): a fifth of the time per report.
    inverse, uniques = pd.factorize(np.asarray(names, dtype=object).astype(str))
    code_of_key, zones = {}, []
    unique_codes = np.empty(len(uniques), dtype=np.int64)
    unknown = np.zeros(len(uniques), dtype=bool)
    # A loop over distinct zone names, of which there are a few hundred at most.
    for i, name in enumerate(uniques):
        zone = _zone_or_none(name)
        if zone is None:
            unknown[i] = True
            zone = ZoneInfo(DEFAULT_ZONE)
        if zone.key not in code_of_key:
            code_of_key[zone.key] = len(zones)
            zones.append(zone)
        unique_codes[i] = code_of_key[zone.key]
    return unique_codes[inverse], zones, unknown[inverse]


def _zone_or_none(name):
    if not name:
        return None
    try:
        return ZoneInfo(name)
    # Not found is a KeyError; a malformed key a ValueError; a folder name an OSError.
    except (KeyError, ValueError, OSError):
        return None


def utc_to_local(instant_us, zone):
    """Local wall time of each UTC instant in `zone`."""
    index = pd.DatetimeIndex(np.asarray(instant_us, dtype=np.int64).view("datetime64[us]"))
    return index.tz_localize("UTC").tz_convert(zone).tz_localize(None).as_unit("us").asi8


def local_to_utc(wall_us, zone):
    """UTC instant of each local wall time in `zone`, as `zoneinfo` reads it with ``fold=0``.

    Notes
    -----
    The report's DST policy (docs/report.md, "Clock changes") is PEP 495's ``fold=0``: a
    wall time that occurs twice (fall back) is its first occurrence, and one that does not
    exist (spring forward) is read with the offset in force before the change. In both cases
    that is the offset *before* the transition. pandas maps every other wall time to its
    single instant and marks the two kinds of edge time as NaT; those get the offset in force
    a day earlier, which is the offset before the transition (no zone changes its offset
    twice in a day).
    """
    wall_us = np.asarray(wall_us, dtype=np.int64)
    index = pd.DatetimeIndex(wall_us.view("datetime64[us]"))
    localized = index.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    utc = localized.as_unit("us").asi8.copy()
    edge = np.asarray(localized.isna())
    if edge.any():
        probe = wall_us[edge] - DAY_US
        offset_before = utc_to_local(probe, zone) - probe
        utc[edge] = wall_us[edge] - offset_before
    return utc


class ZoneClock:
    """The UTC offsets of several zones between two instants, as step functions.

    Converting with pandas costs about a millisecond per call, paid per zone; a report
    paid it per zone, per chunk of stores and per conversion. Here each zone's offset
    changes are found once (a daily sample, then the exact second by bisection), and a
    conversion of any number of values in any zones is one `searchsorted` over keys
    ``zone code * span + (instant - lo)``. Values outside ``[lo_us, hi_us]`` take the
    offset in force at the nearer end.
    """

    def __init__(self, zones, lo_us, hi_us):
        self.lo = int(lo_us) // DAY_US * DAY_US
        self.span = (int(hi_us) // DAY_US + 2) * DAY_US - self.lo
        if self.span * max(len(zones), 1) >= 2**62:
            raise ValueError("lo_us, hi_us: too long a stretch for this many zones")
        utc_keys, wall_keys, offsets = [], [], []
        # A loop over distinct zones, then over their offset changes (two a year at most).
        for code, zone in enumerate(zones):
            changes, before = _offset_changes(zone, self.lo, self.lo + self.span)
            base = code * self.span
            utc_keys.append([base] + [base + at - self.lo for at, _ in changes])
            offsets.append([before] + [after for _, after in changes])
            # Local clocks switch where the later of the two wall times is reached: a wall
            # time repeated (fall back) or skipped (spring forward) reads with the offset
            # before (PEP 495's fold=0, docs/report.md "Clock changes").
            previous, switches = before, []
            for at, after in changes:
                switches.append(base + int(np.clip(at + max(previous, after) - self.lo,
                                                   0, self.span - 1)))
                previous = after
            wall_keys.append([base] + switches)
        self._utc_keys = np.concatenate(utc_keys).astype(np.int64)
        self._wall_keys = np.concatenate(wall_keys).astype(np.int64)
        self._offsets = np.concatenate(offsets).astype(np.int64)

    def _key(self, codes, values):
        return np.asarray(codes, dtype=np.int64) * self.span + np.clip(
            np.asarray(values, dtype=np.int64) - self.lo, 0, self.span - 1)

    def to_local(self, codes, instant_us):
        """Local wall time of each UTC instant, in the zone of its code."""
        step = np.searchsorted(self._utc_keys, self._key(codes, instant_us), side="right") - 1
        return np.asarray(instant_us, dtype=np.int64) + self._offsets[step]

    def to_utc(self, codes, wall_us):
        """UTC instant of each local wall time, as `local_to_utc` reads it."""
        step = np.searchsorted(self._wall_keys, self._key(codes, wall_us), side="right") - 1
        return np.asarray(wall_us, dtype=np.int64) - self._offsets[step]


def _offset_changes(zone, lo_us, hi_us):
    """``([(instant_us, offset_after_us), ...], offset_at_lo_us)``: the instants in
    ``(lo_us, hi_us]`` where `zone`'s UTC offset changes. Assumes at most one change a day,
    as `local_to_utc` does."""
    grid = np.arange(lo_us, hi_us + DAY_US, DAY_US, dtype=np.int64)
    offset = utc_to_local(grid, zone) - grid
    changes = []
    for day in np.flatnonzero(np.diff(offset)):
        # The first whole second of the day with the new offset (tzdata's changes fall on
        # whole seconds).
        low, high = int(grid[day]) // SECOND_US, int(grid[day + 1]) // SECOND_US
        while high - low > 1:
            middle = (low + high) // 2
            if _offset_us(zone, middle) == offset[day]:
                low = middle
            else:
                high = middle
        changes.append((high * SECOND_US, int(offset[day + 1])))
    return changes, int(offset[0])


def _offset_us(zone, second):
    return datetime.fromtimestamp(second, zone).utcoffset() // timedelta(microseconds=1)
