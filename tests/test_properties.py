"""Properties of the engine on many random small data sets (hypothesis).

The expected values come from `reference.py`, a loop-per-store reading of docs/report.md that
shares no code with the engine.
"""

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import reference_report

from app.engine import COLUMNS, build_report, report_as_of
from app.engine import report as engine_module
from app.reports.export import report_csv

HOUR_US = 3_600_000_000
# Zones with DST changes of every kind: US and EU rules, a 30-minute change (Lord Howe),
# changes at midnight (Beirut, Havana), the southern hemisphere, none at all; plus an
# unknown name and the empty name (both fall back to Chicago).
ZONES = ["America/New_York", "America/Chicago", "Europe/London", "Australia/Lord_Howe",
         "Asia/Beirut", "America/Havana", "Australia/Sydney", "UTC", "Asia/Kolkata",
         "Nowhere/Special", ""]
# `now` is drawn near clock changes of those zones, so the week window holds one.
NOW_CHOICES_US = [pd.Timestamp(t, tz="UTC").value // 1000 for t in (
    "2024-03-11 03:00", "2024-11-04 09:00", "2024-04-01 12:00", "2024-10-28 01:00",
    "2024-04-08 06:00", "2024-10-07 18:00", "2024-03-17 23:30", "2024-03-31 00:30",
    "2023-01-25 18:00")]

seconds_of_day = st.one_of(
    st.sampled_from([0, 3600, 5400, 7200, 9000, 10800, 43200, 82800, 86399]),
    st.integers(0, 86399))


@st.composite
def datasets(draw):
    now = draw(st.sampled_from(NOW_CHOICES_US)) + draw(st.integers(-12 * HOUR_US, 12 * HOUR_US))
    polls, hours, zones = [], [], []
    for store in range(draw(st.integers(1, 4))):
        store_id = f"s{store}"
        zone = draw(st.sampled_from(ZONES + [None]))  # None: no timezone row
        if zone is not None:
            zones.append((store_id, zone))
        for _ in range(draw(st.integers(0, 4))):
            hours.append((store_id, draw(st.integers(0, 6)), draw(seconds_of_day),
                          draw(seconds_of_day)))
        instants = draw(st.lists(st.integers(now - 10 * 24 * HOUR_US, now), min_size=1,
                                 max_size=12, unique=True))
        polls += [(store_id, t, draw(st.booleans())) for t in instants]
    # `now` is the latest poll of all stores.
    polls.append(("zz-now", now, True))
    return polls, hours, zones


def frames(polls, hours=(), zones=()):
    """The engine's three input frames from plain tuples (store, µs, active) etc."""
    return (pd.DataFrame({"store_id": pd.Series([p[0] for p in polls], dtype=object),
                          "timestamp_us": np.array([p[1] for p in polls], dtype=np.int64),
                          "active": np.array([p[2] for p in polls], dtype=bool)}),
            pd.DataFrame({"store_id": pd.Series([h[0] for h in hours], dtype=object),
                          "day_of_week": np.array([h[1] for h in hours], dtype=np.int64),
                          "start_local_s": np.array([h[2] for h in hours], dtype=np.int64),
                          "end_local_s": np.array([h[3] for h in hours], dtype=np.int64)}),
            pd.DataFrame({"store_id": pd.Series([z[0] for z in zones], dtype=object),
                          "timezone_str": pd.Series([z[1] for z in zones], dtype=object)}))


def engine_report(polls, hours, zones, threads=1):
    frame = build_report(*frames(polls, hours, zones), threads=threads).frame
    return frame.set_index("store_id")


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(datasets())
def test_statuses_only_decide_how_business_time_is_split(data):
    # A property of the engine alone (the reference is not consulted): a poll's status
    # never moves business time, it only says whether a stretch counts as up or down. So
    # with every poll active, uptime is all the business time the polls cover and downtime
    # is zero; with every status flipped, uptime and downtime trade places.
    polls, hours, zones = data
    engine = engine_report(polls, hours, zones)
    all_active = engine_report([(s, t, True) for s, t, _ in polls], hours, zones)
    flipped = engine_report([(s, t, not a) for s, t, a in polls], hours, zones)
    for window in ("hour", "day", "week"):
        up, down = f"uptime_last_{window}_s", f"downtime_last_{window}_s"
        assert (engine[up] + engine[down]).to_numpy() == pytest.approx(
            all_active[up].to_numpy(), abs=1e-6), window
        assert (all_active[down] == 0).all(), window
        assert flipped[up].to_numpy() == pytest.approx(engine[down].to_numpy(), abs=1e-6)
        assert flipped[down].to_numpy() == pytest.approx(engine[up].to_numpy(), abs=1e-6)


def assert_equals_reference(engine, expected):
    """The engine's report (indexed by store id) has the reference's stores and, to the
    millisecond, its seconds in every column."""
    assert engine.index.tolist() == sorted(expected)
    for store_id, row in expected.items():
        for column in COLUMNS:
            assert engine.loc[store_id, column] == pytest.approx(row[column], abs=1e-3), \
                (store_id, column)


@SETTINGS
@given(datasets())
def test_engine_equals_the_loop_per_store_reference(data):
    engine = engine_report(*data)
    expected = reference_report(*data)
    assert_equals_reference(engine, expected)


@SETTINGS
@given(datasets())
def test_as_of_the_latest_poll_is_the_plain_report(data):
    inputs = frames(*data)
    latest = max(p[1] for p in data[0])
    assert report_csv(report_as_of(*inputs, latest).frame) == \
        report_csv(build_report(*inputs).frame)


@SETTINGS
@given(datasets(), st.floats(0, 1))
def test_as_of_an_earlier_instant_is_the_reference_on_the_truncated_data(data, where):
    polls, hours, zones = data
    # Any instant from the first poll to the latest, polls included (where = 0 and 1).
    first, latest = min(p[1] for p in polls), max(p[1] for p in polls)
    as_of = first + round(where * (latest - first))
    engine = report_as_of(*frames(polls, hours, zones), as_of).frame.set_index("store_id")
    # The reference gets only the polls up to the instant, and the instant as its now.
    expected = reference_report([p for p in polls if p[1] <= as_of], hours, zones, now=as_of)
    assert_equals_reference(engine, expected)


@pytest.mark.parametrize("arrangement", ["as drawn", "grouped, stores against id order"])
@settings(SETTINGS, max_examples=100)
@given(datasets())
def test_chunks_computed_on_two_threads_equal_the_reference(arrangement, data):
    # Chunks of about 3 polls: each store (and the `now` store) in a chunk of its own or
    # two, computed by two threads at once. Grouped as the snapshot gives them (each
    # store's polls together, in time order), a chunk's polls are a slice of the input;
    # here the stores come in descending id order, so the engine's store numbers differ
    # from the rows' order in the report.
    polls, hours, zones = data
    if arrangement != "as drawn":
        polls = sorted(sorted(polls, key=lambda poll: poll[1]), key=lambda poll: poll[0],
                       reverse=True)
    with mock.patch.object(engine_module, "CHUNK_POLLS", 3):
        engine = engine_report(polls, hours, zones, threads=2)
    expected = reference_report(*data)
    assert_equals_reference(engine, expected)
