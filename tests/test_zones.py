"""`ZoneClock` against Python's own zoneinfo arithmetic, value by value, around real clock
changes (the expected values come from `datetime`, not from the code under test)."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from app.engine.zones import ZoneClock

# Changes at 2:00 local (Chicago), at midnight (Beirut), by 30 minutes (Lord Howe), in the
# southern summer (Sydney), at 1:00 UTC (London), none (Phoenix, UTC).
ZONES = [ZoneInfo(name) for name in ("America/Chicago", "Asia/Beirut", "Australia/Lord_Howe",
                                     "Australia/Sydney", "Europe/London", "America/Phoenix",
                                     "UTC")]
SECOND = 1_000_000
LO = int(datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp()) * SECOND
HI = int(datetime(2024, 12, 31, tzinfo=timezone.utc).timestamp()) * SECOND


def local_of(instant_us, zone):
    """Wall time [µs, as if UTC] of a UTC instant, by `datetime`."""
    wall = datetime.fromtimestamp(instant_us // SECOND, zone).replace(tzinfo=timezone.utc)
    return int(wall.timestamp()) * SECOND + instant_us % SECOND


def utc_of(wall_us, zone):
    """UTC instant of a wall time with fold=0 (repeated: the first; skipped: the offset
    before), by `datetime`."""
    naive = datetime.fromtimestamp(wall_us // SECOND, timezone.utc).replace(tzinfo=zone, fold=0)
    return int(naive.timestamp()) * SECOND + wall_us % SECOND


def probes(zone):
    """Random instants of the stretch, and every second near each clock change."""
    rng = np.random.default_rng(7)
    hourly = np.arange(LO, HI, 3600 * SECOND)
    offsets = np.array([local_of(int(t), zone) - int(t) for t in hourly])
    near = []
    for change in np.flatnonzero(np.diff(offsets)):
        near.append(np.arange(hourly[change] - 2 * 3600 * SECOND,
                              hourly[change + 1] + 2 * 3600 * SECOND, 60 * SECOND))
        near.append(np.arange(hourly[change], hourly[change + 1] + 1, SECOND)[::97])
    return np.concatenate([rng.integers(LO, HI, 500), *near]).astype(np.int64)


@pytest.mark.parametrize("code", range(len(ZONES)))
def test_both_directions_match_datetime(code):
    clock = ZoneClock(ZONES, LO - 2 * 86_400 * SECOND, HI + 2 * 86_400 * SECOND)
    zone = ZONES[code]
    values = probes(zone)
    codes = np.full(len(values), code)
    assert clock.to_local(codes, values).tolist() == [local_of(int(v), zone) for v in values]
    assert clock.to_utc(codes, values).tolist() == [utc_of(int(v), zone) for v in values]


def test_mixed_zones_in_one_call():
    clock = ZoneClock(ZONES, LO, HI)
    rng = np.random.default_rng(3)
    values = rng.integers(LO, HI, 2000)
    codes = rng.integers(0, len(ZONES), 2000)
    assert clock.to_utc(codes, values).tolist() == [
        utc_of(int(v), ZONES[c]) for v, c in zip(values, codes)]
