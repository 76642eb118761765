"""A deliberately simple reading of docs/report.md, one store at a time, to check the engine.

It shares no code with `app.engine`: wall times become UTC through `datetime` and `zoneinfo`
exactly as docs/report.md words it (fold=0), intervals are Python lists, and midpoints are exact
fractions. It is slow on purpose; use it on small data.
"""

from datetime import datetime, time, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


def _zone(name):
    try:
        return ZoneInfo(name) if name else ZoneInfo("America/Chicago")
    except (KeyError, ValueError, OSError):
        return ZoneInfo("America/Chicago")


def _micros(moment):
    return (moment - EPOCH) // timedelta(microseconds=1)


def business_time(rows, zone, first_needed, now):
    """B(s) as a sorted list of disjoint [start, end) pairs of UTC microseconds, or None for
    a store without hours rows (open 24x7)."""
    if not rows:
        return None
    spans = []
    day = first_needed.astimezone(zone).date() - timedelta(days=1)
    last = now.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        for weekday, start_s, end_s in rows:
            if weekday != day.weekday():
                continue
            if end_s == 86_399:
                end_s = 86_400
            if end_s <= start_s:
                end_s += 86_400
            midnight = datetime.combine(day, time(0), tzinfo=zone)
            # Wall-clock arithmetic: datetime + timedelta keeps tzinfo and moves the wall time.
            start = (midnight + timedelta(seconds=start_s)).astimezone(timezone.utc)
            end = (midnight + timedelta(seconds=end_s)).astimezone(timezone.utc)
            if end > start:
                spans.append((_micros(start), _micros(end)))
        day += timedelta(days=1)
    spans.sort()
    merged = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlap(intervals, lo, hi):
    """Measure of the union of `intervals` (None = everything) within [lo, hi)."""
    if hi <= lo:
        return 0
    if intervals is None:
        return hi - lo
    return sum(max(0, min(end, hi) - max(start, lo)) for start, end in intervals)


def _inside(intervals, instant):
    return intervals is None or any(start <= instant < end for start, end in intervals)


def reference_report(polls, hours, zones, now=None):
    """The report as {store_id: {"uptime_last_hour_s": ..., ...}} in seconds.

    polls: iterable of (store_id, timestamp_us, active); hours: (store_id, weekday, start_s,
    end_s); zones: (store_id, timezone_str).
    """
    by_store = {}
    for store_id, instant, active in polls:
        by_store.setdefault(store_id, []).append((instant, active))
    rows_of = {}
    for store_id, weekday, start_s, end_s in hours:
        rows_of.setdefault(store_id, []).append((weekday, start_s, end_s))
    zone_of = dict((store_id, name) for store_id, name in zones)
    now_us = max(i for obs in by_store.values() for i, _ in obs) if now is None else now
    now_dt = EPOCH + timedelta(microseconds=now_us)

    report = {}
    for store_id in sorted(by_store):
        observations = sorted(by_store[store_id])
        zone = _zone(zone_of.get(store_id, "America/Chicago"))
        first = EPOCH + timedelta(microseconds=observations[0][0])
        business = business_time(rows_of.get(store_id, []), zone,
                                 min(first, now_dt - timedelta(days=8)), now_dt)
        kept = [(i, a) for i, a in observations if _inside(business, i)]
        row = {}
        for window, length in WINDOWS.items():
            lo, hi = now_us - length // timedelta(microseconds=1), now_us
            up = down = Fraction(0)
            for k, (instant, active) in enumerate(kept):
                start = Fraction(kept[k - 1][0] + instant, 2) if k > 0 else Fraction(lo)
                end = Fraction(instant + kept[k + 1][0], 2) if k + 1 < len(kept) else Fraction(hi)
                part = _overlap(business, max(start, lo), min(end, hi))
                if active:
                    up += part
                else:
                    down += part
            row[f"uptime_last_{window}_s"] = float(up) / 1e6
            row[f"downtime_last_{window}_s"] = float(down) / 1e6
        report[store_id] = row
    return report
