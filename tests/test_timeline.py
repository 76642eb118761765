"""The per-store timeline of the engine: hand-worked cases and hypothesis properties.

Expected values come from the first worked example of docs/report.md (by hand) and from
`reference.py`, the loop-per-store reading of docs/report.md that shares no code with the
engine.
"""

from datetime import timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from reference import EPOCH, _inside, _zone, business_time, reference_report
from test_engine import hms, us
from test_properties import SETTINGS, datasets, frames

from app.engine import build_report
from app.engine.timeline import build_timelines, local_days

MIN_US = 60_000_000


def test_spec_worked_example_as_segments_and_one_incident():
    # New York, Monday 2023-01-23 09:00-12:00 EST = 14:00-17:00 UTC; polls at 10:14 EST
    # (active) and 11:15 EST (inactive); polls outside the hours are ignored. By hand: up
    # 14:00-15:44:30 UTC, down 15:44:30-17:00 UTC (75.5 min), the only business time in the
    # week before Wednesday 18:00 UTC.
    polls = [("1001", us("2023-01-23 15:14"), True), ("1001", us("2023-01-23 16:15"), False),
             ("1001", us("2023-01-23 12:30"), False), ("1001", us("2023-01-23 17:30"), False)]
    data = frames(polls, [("1001", 0, hms("09:00"), hms("12:00"))],
                  [("1001", "America/New_York")])
    result = build_timelines(*data, now_us=us("2023-01-25 18:00"))
    assert listed(result.segments) == [
        (us("2023-01-23 14:00"), us("2023-01-23 15:44:30"), True),
        (us("2023-01-23 15:44:30"), us("2023-01-23 17:00"), False)]
    assert listed(result.business) == [(us("2023-01-23 14:00"), us("2023-01-23 17:00"))]
    assert (result.timezone, result.uptime_s.tolist(), result.downtime_s.tolist()) == \
        (["America/New_York"], [104.5 * 60], [75.5 * 60])


def test_closed_hours_split_incidents_and_days_are_local():
    # UTC store open 10:00-12:00 every day, inactive at every poll from Monday 2024-01-01
    # 11:00 on: each day's 2 h is one incident (the night between splits them). Up before
    # the midpoint of Sunday 11:00 and Monday 11:00 falls at night, so Monday 10:00-12:00 is
    # all down; Sunday 2023-12-31 10:00-12:00 is all up. now = Wednesday 2024-01-03 12:00:
    # the week starts Wednesday 2023-12-27 12:00, so it holds 27th none (12:00 is the end),
    # 28th-31st up (4 x 2 h), 1st-3rd down (3 incidents of 2 h).
    polls = [("s", us(f"2023-12-{d} 11:00"), True) for d in range(20, 32)]
    polls += [("s", us(f"2024-01-0{d} 11:00"), False) for d in (1, 2, 3)]
    polls += [("s", us("2024-01-03 12:00"), False)]
    hours = [("s", day, hms("10:00"), hms("12:00")) for day in range(7)]
    result = build_timelines(*frames(polls, hours, [("s", "UTC")]))
    assert [(a, b) for a, b, up in listed(result.segments) if not up] == [
        (us(f"2024-01-0{d} 10:00"), us(f"2024-01-0{d} 12:00")) for d in (1, 2, 3)]
    assert result.uptime_s.tolist() == [8 * 3600]
    days = week_days(result, "UTC")
    assert days["date"][0] == "2023-12-27" and days["date"][-1] == "2024-01-03"
    assert days["business_s"].tolist() == [0] + [7200] * 7
    assert days["uptime_s"].tolist() == [0, 7200, 7200, 7200, 7200, 0, 0, 0]


def test_a_local_day_in_a_zone_with_a_clock_change():
    # New York, open 24x7, all polls active; the week ending Monday 2024-03-11 12:00 UTC
    # holds Sunday 2024-03-10, a local day of 23 hours (clocks go 02:00 -> 03:00).
    polls = [("s", us("2024-03-01 00:00") + k * 3_600_000_000, True) for k in range(252)]
    result = build_timelines(*frames(polls, (), [("s", "America/New_York")]))
    days = week_days(result, "America/New_York")
    sunday = days["date"].index("2024-03-10")
    assert days["business_s"][sunday] == days["uptime_s"][sunday] == 23 * 3600
    assert days["business_s"].sum() == 7 * 86400


def listed(stretches):
    """(start, end[, active]) tuples of every stretch."""
    columns = [stretches.start_us.tolist(), stretches.end_us.tolist()]
    if stretches.active is not None:
        columns.append(stretches.active.tolist())
    return list(zip(*columns))


def week_days(result, zone):
    segments = result.segments
    return local_days(segments.start_us, segments.end_us, segments.active, ZoneInfo(zone),
                      *result.window)


def _expected_week(polls, hours, zones, store_id, now_us):
    """Reference B(s) within the week, and the observations in O(s), of one store."""
    zone = _zone(dict(zones).get(store_id, "America/Chicago"))
    observations = sorted((t, a) for s, t, a in polls if s == store_id)
    now = EPOCH + timedelta(microseconds=now_us)
    first = EPOCH + timedelta(microseconds=observations[0][0])
    rows = [(d, a, b) for s, d, a, b in hours if s == store_id]
    business = business_time(rows, zone, min(first, now - timedelta(days=8)), now)
    kept = [(t, a) for t, a in observations if _inside(business, t)]
    week_start = now_us - 7 * 24 * 3600 * 1_000_000
    if business is None:  # open 24x7
        business = [(week_start, now_us)]
    in_week = [(max(a, week_start), min(b, now_us)) for a, b in business]
    return [(a, b) for a, b in in_week if b > a], kept


def _merged(intervals):
    out = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _status_at(kept, instant):
    """Status of the nearest kept observation (a tie at a midpoint goes to the later one)."""
    for k in range(len(kept) - 1, -1, -1):
        if k == 0 or Fraction(kept[k - 1][0] + kept[k][0], 2) <= instant:
            return kept[k][1]


@settings(SETTINGS, max_examples=120)
@given(datasets())
def test_segments_tile_business_time_and_incidents_add_up_to_downtime(data):
    polls, hours, zones = data
    now = max(t for _, t, _ in polls)
    report = build_report(*frames(*data)).frame.set_index("store_id")
    reference = reference_report(*data)
    together = build_timelines(*frames(*data))  # every store in one call
    for code, store_id in enumerate(sorted({p[0] for p in polls})):
        # As the API does: only this store's rows, and the `now` of all the data.
        mine = [p for p in polls if p[0] == store_id]
        result = build_timelines(*frames(mine, [h for h in hours if h[0] == store_id],
                                         [z for z in zones if z[0] == store_id]), now_us=now)
        segments = listed(result.segments)
        assert together.store_ids[code] == store_id
        assert listed(together.segments.of(code)) == segments
        assert listed(together.business.of(code)) == listed(result.business)
        in_week, kept = _expected_week(polls, hours, zones, store_id, now)
        pieces = [(a, b) for a, b, _ in segments]
        if not kept:
            assert pieces == [], store_id
        else:
            # Adjacent segments tile exactly B(s) within the week: no gap, no overlap.
            assert all(b > a for a, b in pieces)
            assert _merged(pieces) == _merged(in_week), store_id
            assert all(pieces[k][1] <= pieces[k + 1][0] for k in range(len(pieces) - 1))
            for a, b, active in segments:
                # The status just inside each end of a segment is its observation's (the
                # engine puts a midpoint on the whole µs below, the reference exactly).
                assert _status_at(kept, a + Fraction(1, 2)) == active
                assert _status_at(kept, b - Fraction(1, 2)) == active
        row = report.loc[store_id]
        incident_minutes = sum(b - a for a, b, up in segments if not up) / MIN_US
        assert incident_minutes == pytest.approx(row["downtime_last_week_s"] / 60, abs=1e-6)
        # ... and the loop reference's downtime (exact midpoints there: within a µs each).
        assert incident_minutes == pytest.approx(
            reference[store_id]["downtime_last_week_s"] / 60, abs=1e-3)
        assert result.uptime_s[0] == pytest.approx(row["uptime_last_week_s"], abs=1e-6)
        assert result.downtime_s[0] == pytest.approx(row["downtime_last_week_s"], abs=1e-6)
        up_seconds = sum(b - a for a, b, up in segments if up) / 1e6
        assert up_seconds == pytest.approx(row["uptime_last_week_s"], abs=1e-6)


def test_no_polls_is_an_error():
    with pytest.raises(ValueError, match="polls"):
        build_timelines(*frames([]))
