"""Time zones: resolve names, and convert between UTC and local wall time.

Instants and wall times are int64 microseconds since 1970-01-01 (wall times as if the local
clock were UTC). This module is the only place where local time meets UTC.
"""

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

DEFAULT_ZONE = "America/Chicago"
DAY_US = 86_400_000_000


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
    uniques, inverse = np.unique(np.asarray(names, dtype=object).astype(str), return_inverse=True)
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


def per_zone(zone_codes, zones, values, convert):
    """Apply ``convert(values_of_one_zone, zone)`` zone by zone; results in input order.

    A loop over distinct zones, not over stores or rows: each call converts whole columns.
    """
    zone_codes = np.asarray(zone_codes)
    values = np.asarray(values, dtype=np.int64)
    out = np.empty_like(values)
    order = np.argsort(zone_codes, kind="stable")
    sorted_codes = zone_codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk):
            out[chunk] = convert(values[chunk], zones[zone_codes[chunk[0]]])
    return out
