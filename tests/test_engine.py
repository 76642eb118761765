"""The engine on tiny hand-built data; every expected value is worked out in a comment."""

import numpy as np
import pandas as pd
import pytest

from app.engine import COLUMNS, build_report
from app.engine.axis import BusinessMeasure
from app.engine.hours import merge_intervals
from app.engine.status import governed_spans
from app.reports.export import report_csv

H = 3600  # seconds in an hour


def us(text):
    """UTC text -> microseconds since the epoch."""
    return pd.Timestamp(text, tz="UTC").value // 1000


def hms(text):
    h, m, *s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + (s[0] if s else 0)


def report(polls, hours=(), zones=(), now=None):
    """Run the engine on rows written as text; return the frame indexed by store_id."""
    poll_frame = pd.DataFrame({
        "store_id": pd.Series([p[0] for p in polls], dtype=object),
        "timestamp_us": np.array([us(p[1]) for p in polls], dtype=np.int64),
        "active": np.array([p[2] == "active" for p in polls], dtype=bool)})
    hours_frame = pd.DataFrame({
        "store_id": pd.Series([h[0] for h in hours], dtype=object),
        "day_of_week": np.array([h[1] for h in hours], dtype=np.int64),
        "start_local_s": np.array([hms(h[2]) for h in hours], dtype=np.int64),
        "end_local_s": np.array([hms(h[3]) for h in hours], dtype=np.int64)})
    zone_frame = pd.DataFrame({"store_id": pd.Series([z[0] for z in zones], dtype=object),
                               "timezone_str": pd.Series([z[1] for z in zones], dtype=object)})
    result = build_report(poll_frame, hours_frame, zone_frame,
                          None if now is None else us(now))
    return result.frame.set_index("store_id"), result.warnings


def seconds(frame, store):
    """(up hour, up day, up week, down hour, down day, down week) in seconds."""
    return tuple(round(float(v), 3) for v in frame.loc[store].to_numpy())


def test_spec_worked_example():
    # New York, Monday 2023-01-23 09:00-12:00 EST = 14:00-17:00 UTC. Polls 10:14 EST (active)
    # and 11:15 EST (inactive), midpoint 10:44:30: up 104.5 min, down 75.5 min, both in the
    # week only (now is Wednesday 18:00 UTC).
    frame, _ = report(
        [("1001", "2023-01-23 15:14", "active"), ("1001", "2023-01-23 16:15", "inactive"),
         ("1001", "2023-01-23 12:30", "inactive"), ("1001", "2023-01-23 17:30", "inactive")],
        hours=[("1001", 0, "09:00", "12:00")], zones=[("1001", "America/New_York")],
        now="2023-01-25 18:00")
    assert seconds(frame, "1001") == (0, 0, 104.5 * 60, 0, 0, 75.5 * 60)


@pytest.mark.parametrize("hours, polls, now, expected", [
    # Spring forward, New York, Sunday 2024-03-10: 01:00 EST = 06:00 UTC, 04:00 EDT = 08:00
    # UTC, so the 3-hour row is 2 h of business time. Midpoint of 06:30 and 07:30 is 07:00.
    pytest.param(("01:00", "04:00"), [("06:30", "active"), ("07:30", "inactive")],
                 "2024-03-10 12:00", (0, H, H, 0, H, H), id="spring-forward-short-day"),
    # 02:15 does not exist; fold=0 reads it with the offset before (EST): 07:15 UTC, and
    # 03:30 EDT = 07:30 UTC: 15 min (shifting 02:15 forward to 03:00 would give 30 min).
    pytest.param(("02:15", "03:30"), [("07:20", "active")],
                 "2024-03-10 12:00", (0, 900, 900, 0, 0, 0), id="spring-forward-missing-start"),
    # Fall back, Sunday 2024-11-03: 00:00 EDT = 04:00 UTC, 03:00 EST = 08:00 UTC: 4 h.
    pytest.param(("00:00", "03:00"), [("05:00", "active")],
                 "2024-11-03 12:00", (0, 4 * H, 4 * H, 0, 0, 0), id="fall-back-long-day"),
    # 01:30 happens twice; fold=0 takes the first (EDT): 05:30 UTC. 02:30 EST = 07:30 UTC.
    pytest.param(("01:30", "02:30"), [("07:00", "inactive")],
                 "2024-11-03 12:00", (0, 0, 0, 0, 2 * H, 2 * H), id="fall-back-repeated-start"),
])
def test_daylight_saving_changes(hours, polls, now, expected):
    day = now[:10]
    frame, _ = report([("s", f"{day} {t}", status) for t, status in polls],
                      hours=[("s", 6, *hours)], zones=[("s", "America/New_York")], now=now)
    assert seconds(frame, "s") == expected


def test_span_emptied_by_clock_change_contributes_nothing():
    # 02:30 (nonexistent, read as EST) = 07:30 UTC and 03:00 EDT = 07:00 UTC: an empty span.
    # The other row, 05:00-06:00 EDT = 09:00-10:00 UTC, is the only business time: 1 h up.
    frame, _ = report([("s", "2024-03-10 09:30", "active")],
                      hours=[("s", 6, "02:30", "03:00"), ("s", 6, "05:00", "06:00")],
                      zones=[("s", "America/New_York")], now="2024-03-10 12:00")
    assert seconds(frame, "s") == (0, H, H, 0, 0, 0)


def test_overnight_hours_run_past_midnight():
    # UTC, Tuesday 22:00 -> 02:00. Tue 2023-01-24 22:00 to Wed 02:00 is in the day window
    # [01-24 12:00, 01-25 12:00); Tue 01-17's night ends 01-18 02:00, before the week window.
    frame, _ = report([("s", "2023-01-25 01:00", "inactive")],
                      hours=[("s", 1, "22:00", "02:00")], zones=[("s", "UTC")],
                      now="2023-01-25 12:00")
    assert seconds(frame, "s") == (0, 0, 0, 0, 4 * H, 4 * H)


def test_end_235959_means_midnight():
    # UTC, Wednesday 20:00-23:59:59 and Thursday 00:00-01:00 join into [Wed 20:00, Thu 01:00).
    # The poll at 23:59:59.5 is inside only because 23:59:59 means 24:00.
    frame, _ = report([("s", "2023-01-25 23:59:59.5", "inactive")],
                      hours=[("s", 2, "20:00", "23:59:59"), ("s", 3, "00:00", "01:00")],
                      zones=[("s", "UTC")], now="2023-01-26 01:00")
    assert seconds(frame, "s") == (0, 0, 0, H, 5 * H, 5 * H)


def test_overlapping_and_repeated_rows_count_once():
    # Monday 09:00-12:00, 11:00-14:00 and 09:00-12:00 again: the union is 09:00-14:00, 5 h.
    frame, _ = report([("s", "2023-01-23 10:00", "active")],
                      hours=[("s", 0, "09:00", "12:00"), ("s", 0, "11:00", "14:00"),
                             ("s", 0, "09:00", "12:00")],
                      zones=[("s", "UTC")], now="2023-01-23 18:00")
    assert seconds(frame, "s") == (0, 5 * H, 5 * H, 0, 0, 0)


def test_start_equal_to_end_is_a_whole_day():
    # UTC, Monday 06:00-06:00 is 24 h: [Mon 06:00, Tue 06:00). now = Tue 12:00: the day
    # window [Mon 12:00, Tue 12:00) holds 18 h of it; the week all 24 h.
    frame, _ = report([("s", "2023-01-23 07:00", "active")],
                      hours=[("s", 0, "06:00", "06:00")], zones=[("s", "UTC")],
                      now="2023-01-24 12:00")
    assert seconds(frame, "s") == (0, 18 * H, 24 * H, 0, 0, 0)


def test_status_changes_at_the_midpoint_between_polls():
    # 24x7 (no hours). Polls 10:00 active, 11:00 inactive; now 11:00. Midpoint 10:30:
    # hour [10:00, 11:00): 30 min each; day: active from 01-22 11:00 to 10:30 = 23.5 h.
    frame, _ = report([("s", "2023-01-23 10:00", "active"), ("s", "2023-01-23 11:00", "inactive")],
                      now="2023-01-23 11:00")
    assert seconds(frame, "s") == (1800, 23.5 * H, 167.5 * H, 1800, 1800, 1800)


def test_a_tie_at_the_midpoint_goes_to_the_later_observation():
    start, end = governed_spans(np.array([0, 0, 0, 1]), np.array([0, 10, 20, 5]))
    # Observation 1 governs [5, 15): the midpoint 5 itself is its, not observation 0's.
    assert start[1] == 5 and end[0] == 5
    assert end[1] == 15 and start[2] == 15
    # The first and last observation of each store reach out without bound.
    assert start[0] == np.iinfo(np.int64).min and end[2] == np.iinfo(np.int64).max
    assert start[3] == np.iinfo(np.int64).min and end[3] == np.iinfo(np.int64).max


def test_missing_and_unknown_timezones_default_to_chicago():
    # Wednesday 09:00-10:00 local. Chicago (CST, UTC-6): [15:00, 16:00) UTC, so only the
    # 15:30 poll (active) is inside. New York (EST): [14:00, 15:00), only 14:30 (inactive).
    polls = [(s, t, st) for s in "abc" for t, st in
             (("2023-01-25 14:30", "inactive"), ("2023-01-25 15:30", "active"))]
    frame, warnings = report(polls, hours=[(s, 2, "09:00", "10:00") for s in "abc"],
                             zones=[("b", "Mars/Olympus_Mons"), ("c", "America/New_York")],
                             now="2023-01-25 18:00")
    assert seconds(frame, "a") == (0, H, H, 0, 0, 0)
    assert seconds(frame, "b") == (0, H, H, 0, 0, 0)
    assert seconds(frame, "c") == (0, 0, 0, 0, H, H)
    assert warnings["store_id"].tolist() == ["b"]
    assert "Mars/Olympus_Mons" in warnings["message"][0]


def test_store_without_hours_is_open_all_the_time_and_old_polls_count():
    # now = 01-25 18:00; a poll 9 days earlier (inactive) and one at now (active): midpoint
    # 4.5 days before now. Week: down 2.5 d = 60 h, up 4.5 d = 108 h.
    frame, _ = report([("s", "2023-01-16 18:00", "inactive"), ("s", "2023-01-25 18:00", "active")])
    assert seconds(frame, "s") == (H, 24 * H, 108 * H, 0, 0, 60 * H)


def test_polls_outside_business_hours_give_zeros_and_stores_without_polls_no_row():
    # Monday 09:00-17:00 UTC. 17:00 is the end of the half-open interval: outside. The
    # store "quiet" has hours but no polls: no row.
    frame, _ = report([("s", "2023-01-23 17:00", "active"), ("s", "2023-01-24 10:00", "inactive")],
                      hours=[("s", 0, "09:00", "17:00"), ("quiet", 0, "09:00", "17:00")],
                      zones=[("s", "UTC")], now="2023-01-25 12:00")
    assert frame.index.tolist() == ["s"]
    assert seconds(frame, "s") == (0, 0, 0, 0, 0, 0)


def test_rows_are_sorted_by_store_id_as_text():
    frame, _ = report([(s, "2023-01-25 12:00", "active") for s in ("9", "10", "007", "b", "A")])
    assert frame.index.tolist() == ["007", "10", "9", "A", "b"]


def test_no_polls_no_rows():
    frame, _ = report([])
    assert len(frame) == 0


def test_now_before_the_latest_poll_is_refused():
    with pytest.raises(ValueError, match="now_us"):
        report([("s", "2023-01-25 12:00", "active")], now="2023-01-25 11:00")


def test_each_engine_column_lands_under_its_header_in_its_unit():
    # One store, and a different number of seconds in every engine column: 60 s per unit
    # for the hour window (minutes), 3600 s for day and week (hours). Written out by hand
    # from the header in docs/report.md, so reordering or renaming a column anywhere fails here.
    frame = pd.DataFrame({"store_id": ["s"],
                          "uptime_last_hour_s": [60.0], "uptime_last_day_s": [7200.0],
                          "uptime_last_week_s": [10800.0], "downtime_last_hour_s": [240.0],
                          "downtime_last_day_s": [18000.0],
                          "downtime_last_week_s": [21600.0]})
    assert sorted(COLUMNS) == sorted(frame.columns[1:])
    assert report_csv(frame) == (
        "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
        "downtime_last_hour,downtime_last_day,downtime_last_week\n"
        "s,1.00,2.00,3.00,4.00,5.00,6.00\n")


@pytest.mark.parametrize("copies", [1, 3])  # 9 keys are searched for; 27 are merged
def test_business_measure_by_search_and_by_merge(copies):
    # Business time [10, 20) and [30, 40) on the axis. Key 15 is 5 into the first interval;
    # key 35 is past all 10 of it and 5 into the second; ends are outside (start-inclusive).
    measure = BusinessMeasure(np.array([10, 30]), np.array([20, 40]))
    keys = np.repeat(np.array([5, 10, 15, 20, 25, 30, 35, 40, 45]), copies)
    inside = np.repeat([False, True, True, False, False, True, True, False, False], copies)
    before = np.repeat([0, 0, 5, 10, 10, 10, 15, 20, 20], copies)
    assert measure.contains(keys).tolist() == inside.tolist()
    assert measure.up_to(keys).tolist() == before.tolist()
    shuffled = np.random.default_rng(copies).permutation(len(keys))  # unsorted: searched
    assert measure.up_to(keys[shuffled]).tolist() == before[shuffled].tolist()


@pytest.mark.parametrize("shift", [0, 2**61])  # 2**61: too long to lay end to end
def test_merge_intervals_joins_overlapping_and_touching_ones_per_store(shift):
    # Store 0: [0, 4) overlaps [3, 10), which touches [10, 12): one [0, 12); [20, 21) stays
    # apart. Store 1 (moved by `shift`): [0, 5) touches [5, 8): one [0, 8).
    store = np.array([1, 0, 0, 0, 1, 0])
    start = np.array([5, 0, 10, 3, 0, 20]) + np.where(store == 1, shift, 0)
    end = np.array([8, 4, 12, 10, 5, 21]) + np.where(store == 1, shift, 0)
    merged = merge_intervals(store, start, end)
    assert [m.tolist() for m in merged] == [[0, 0, 1], [0, 20, shift], [12, 21, 8 + shift]]
