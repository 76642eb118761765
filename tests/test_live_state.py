"""Live state and kept incidents (app.live): hand-worked cases, and a hypothesis property
that the incidents kept after any sequence of ingests equal a full recomputation.

Expected instants are worked out by hand from SPEC "Live state and alerts": the status
switches half-way between two observations in business time, closed hours end an
incident, a clock change inside business time does not.
"""

import itertools
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from app.engine.timeline import build_timelines
from app.extensions import db
from app.ingest.load import ingest
from app.live import read, webhooks
from app.live.state import compute, states
from app.storage.models import OPEN_END_US, Incident, LiveMeta, Store, WebhookEvent

HOUR_US = 3_600_000_000
MIN_US = 60_000_000


def us(text):
    """µs since the epoch of a UTC wall time such as '2024-03-10 05:00'."""
    moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def frames(polls, hours=(), zones=()):
    return (pd.DataFrame(polls, columns=["store_id", "timestamp_us", "active"]),
            pd.DataFrame(list(hours), columns=["store_id", "day_of_week", "start_local_s",
                                               "end_local_s"]),
            pd.DataFrame(list(zones), columns=["store_id", "timezone_str"]))


def since(store_ids, instant):
    return pd.DataFrame({"store_id": store_ids, "since_us": [instant] * len(store_ids)})


def incidents_of(live):
    return [(live.store_ids[s], int(a), int(b), bool(o)) for s, a, b, o in zip(
        live.incident_store, live.incident_start, live.incident_end, live.incident_open)]


# The state and incidents, pure --------------------------------------------------------------

def test_closing_time_ends_an_incident():
    # UTC store open 10:00-12:00 every day, inactive at 11:00 on Monday 1 and Tuesday 2
    # January 2024, and at 11:30 Tuesday (now). Monday's 10:00-12:00 is one incident, closed
    # by the closing time; Tuesday's runs from its opening 10:00 to now, open.
    polls = [("s", us("2024-01-01 11:00"), False), ("s", us("2024-01-02 11:00"), False),
             ("s", us("2024-01-02 11:30"), False)]
    hours = [("s", day, 10 * 3600, 12 * 3600) for day in range(7)]
    now = us("2024-01-02 11:30")
    live = compute(*frames(polls, hours, [("s", "UTC")]), now, since(["s"], us("2024-01-01 00:00")))
    assert incidents_of(live) == [
        ("s", us("2024-01-01 10:00"), us("2024-01-01 12:00"), False),
        ("s", us("2024-01-02 10:00"), now, True)]
    assert live.open_now.tolist() == [True]
    assert (live.counted_us.tolist(), live.counted_active.tolist()) == ([now], [False])


def test_a_clock_change_inside_business_time_does_not_split_an_incident():
    # New York, Sunday 10 March 2024, open 00:00-06:00 local: clocks jump 02:00 -> 03:00, so
    # 00:00 EST = 05:00 UTC to 06:00 EDT = 10:00 UTC, five real hours. Inactive at 01:00 EST
    # (06:00 UTC) and 04:00 EDT (08:00 UTC); a poll at 12:00 UTC (closed) makes `now`.
    polls = [("ny", us("2024-03-10 06:00"), False), ("ny", us("2024-03-10 08:00"), False),
             ("ny", us("2024-03-10 12:00"), True)]
    hours = [("ny", 6, 0, 6 * 3600)]
    now = us("2024-03-10 12:00")
    live = compute(*frames(polls, hours, [("ny", "America/New_York")]), now,
                   since(["ny"], us("2024-03-09 00:00")))
    assert incidents_of(live) == [("ny", us("2024-03-10 05:00"), us("2024-03-10 10:00"), False)]
    assert live.open_now.tolist() == [False]


# Kept incidents, through real ingests ---------------------------------------------------------

def feed(app, tmp_path, polls, hours=None, zones=None, name=None):
    """Ingest these polls (store_id, wall time text or µs, active) as a status file."""
    folder = tmp_path / (name or f"feed-{next(_feeds)}")
    folder.mkdir()
    lines = ["store_id,timestamp_utc,status"]
    for store, moment, active in polls:
        text = moment if isinstance(moment, str) else str(
            np.datetime64(int(moment), "us")).replace("T", " ")
        lines.append(f"{store},{text} UTC,{'active' if active else 'inactive'}")
    (folder / "store_status.csv").write_text("\n".join(lines) + "\n")
    if hours is not None:
        (folder / "business_hours.csv").write_text("\n".join(
            ["store_id,dayOfWeek,start_time_local,end_time_local"]
            + [f"{s},{d},{a},{b}" for s, d, a, b in hours]) + "\n")
    if zones is not None:
        (folder / "store_timezone.csv").write_text("\n".join(
            ["store_id,timezone_str"] + [f"{s},{z}" for s, z in zones]) + "\n")
    with app.app_context():
        ingest(folder)


_feeds = itertools.count()


def kept(app):
    """Kept incidents: (store_id, start, end or None while open)."""
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(sa.select(Store.store_id, Incident.start_us, Incident.end_us)
                            .join(Store, Store.id == Incident.store_pk)
                            .order_by(Store.store_id, Incident.start_us)).all()
    return [(s, a, None if b == OPEN_END_US else b) for s, a, b in rows]


def events(app):
    with app.app_context(), db.engine.connect() as conn:
        return [(t, i) for t, i in conn.execute(sa.select(WebhookEvent.type,
                                                          WebhookEvent.incident_id)
                                                .order_by(WebhookEvent.created_us)).all()]


def test_a_late_poll_moves_splits_and_removes_an_incident(app, tmp_path):
    # A store open 24x7 (UTC) polled inactive at 00:00 and 04:00: one incident, open, from
    # where the data begins (its first observation governs back to there): 25 December
    # 00:00, the poll of a second store, which makes the data older than a week.
    feed(app, tmp_path, [("old", "2023-12-25 00:00", True), ("a", "2024-01-01 00:00", False),
                         ("a", "2024-01-01 04:00", False)])
    assert kept(app) == [("a", us("2023-12-25 00:00"), None)]
    # A late poll at 02:00, active: it governs 01:00-03:00, splitting the incident into
    # 00:00-01:00 (closed) and 03:00-now (open).
    feed(app, tmp_path, [("a", "2024-01-01 02:00", True)])
    assert kept(app) == [("a", us("2023-12-25 00:00"), us("2024-01-01 01:00")),
                         ("a", us("2024-01-01 03:00"), None)]
    # 03:00 active: the second incident starts at 03:30.
    feed(app, tmp_path, [("a", "2024-01-01 03:00", True)])
    assert kept(app) == [("a", us("2023-12-25 00:00"), us("2024-01-01 01:00")),
                         ("a", us("2024-01-01 03:30"), None)]
    # The 04:00 poll sent again as active: the open incident is gone; a new poll at 05:00
    # inactive opens one from 04:30.
    feed(app, tmp_path, [("a", "2024-01-01 04:00", True)])
    assert kept(app) == [("a", us("2023-12-25 00:00"), us("2024-01-01 01:00"))]
    feed(app, tmp_path, [("a", "2024-01-01 05:00", False)])
    assert kept(app) == [("a", us("2023-12-25 00:00"), us("2024-01-01 01:00")),
                         ("a", us("2024-01-01 04:30"), None)]
    with app.app_context():
        status = read.status()
    assert status["now"] == "2024-01-01T05:00:00Z"
    assert status["stores"] == {"up": 0, "down": 1, "closed": 0, "silent": 1}
    assert [(i["start"], i["end"], i["minutes"]) for i in status["open_incidents"]] == [
        ("2024-01-01T04:30:00Z", None, 30.0)]


def test_young_data_hourly_polls_send_no_updates(app, tmp_path):
    # Data younger than a week: store "a" (open 24x7, UTC) polled inactive at 00:00 on
    # 1 January 2024 and every hour after; "b" from 02:00, inactive too. The earliest poll
    # (00:00) is where the data begins: both incidents start there and stay open. Every
    # ingest moves `now` (and the week window) by an hour; neither incident changes, so
    # each webhook hears incident.opened once per incident and nothing else.
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True)
    with app.app_context():
        webhooks.add_webhook("http://127.0.0.1:9/hook", "s", allow_private=True)
    feed(app, tmp_path, [("a", "2024-01-01 00:00", False)])
    for hour in range(1, 6):
        polls = [("a", f"2024-01-01 0{hour}:00", False)]
        if hour >= 2:
            polls.append(("b", f"2024-01-01 0{hour}:00", False))
        feed(app, tmp_path, polls)
    assert kept(app) == [("a", us("2024-01-01 00:00"), None), ("b", us("2024-01-01 00:00"), None)]
    assert sorted(t for t, _ in events(app)) == ["incident.opened", "incident.opened"]


def test_states_closed_silent_up_down(app, tmp_path):
    # now = 12:00 UTC Monday 1 January 2024 (store "up"'s poll). "closed" opens 13:00-14:00;
    # "silent" is open 24x7 and last polled 09:00 (three hours before now > 120 minutes);
    # "down" polled inactive at 11:00.
    feed(app, tmp_path, [("up", "2024-01-01 12:00", True), ("closed", "2024-01-01 11:00", True),
                         ("silent", "2024-01-01 09:00", True),
                         ("down", "2024-01-01 11:00", False)],
         hours=[("closed", 0, "13:00", "14:00")], zones=[("closed", "UTC")])
    with app.app_context():
        stores = {s["store_id"]: s["state"] for s in read.stores()["stores"]}
    assert stores == {"up": "up", "closed": "closed", "silent": "silent", "down": "down"}


# Property: incremental = full recomputation ---------------------------------------------------

STORES = ["p", "q", "r"]
BASE = us("2024-03-04 00:00")  # a Monday; New York changes clocks on Sunday 10 March


def full_recomputation(app):
    """Every store's incidents computed afresh from all polls (from the earliest poll)."""
    with app.app_context(), db.engine.connect() as conn:
        polls = pd.read_sql(sa.text(
            "SELECT s.store_id, p.timestamp_us, p.active FROM store_status p JOIN store s "
            "ON s.id = p.store_pk ORDER BY s.store_id, p.timestamp_us"), conn)
        hours = pd.read_sql(sa.text(
            "SELECT s.store_id, h.day_of_week, h.start_local_s, h.end_local_s FROM "
            "business_hours h JOIN store s ON s.id = h.store_pk"), conn)
        zones = pd.read_sql(sa.text(
            "SELECT s.store_id, z.timezone_str FROM store_timezone z JOIN store s "
            "ON s.id = z.store_pk"), conn)
    polls["active"] = polls["active"].astype(bool)
    now = int(polls["timestamp_us"].max())
    origin = int(polls["timestamp_us"].min())  # where the data begins
    live = compute(polls, hours, zones, now, since(sorted(set(polls["store_id"])), origin))
    horizon = now - int(app.config["INCIDENT_DAYS"] * 24 * HOUR_US)
    full = [(s, a, None if o else b) for s, a, b, o in incidents_of(live) if o or b >= horizon]
    latest = polls.groupby("store_id")["timestamp_us"].max().reindex(live.store_ids).to_numpy()
    expected_states = dict(zip(live.store_ids, states(
        live.open_now, live.counted_us, live.counted_active, latest, now,
        int(app.config["SILENT_AFTER_MINUTES"] * MIN_US)).tolist()))
    return sorted(full), expected_states, (polls, hours, zones, now)


def kept_states(app):
    with app.app_context():
        return {s["store_id"]: s["state"] for s in read.stores(limit=500)["stores"]}


def check_down_without_incident(app, full, expected_states):
    """The live state's kept count of down stores without an open incident is that of a
    full recomputation (`full`: its incidents, `expected_states`: its states)."""
    open_stores = {store for store, _start, end in full if end is None}
    expected = sum(1 for store, state in expected_states.items()
                   if state == "down" and store not in open_stores)
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.select(LiveMeta.stores_down_without_incident)).scalar() \
            == expected


hourly_poll = st.tuples(st.sampled_from(STORES), st.integers(0, 24 * 12),
                        st.integers(0, 59), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(st.lists(hourly_poll, min_size=1, max_size=12), min_size=1,
                        max_size=5),
       hours_for_p=st.sampled_from([[], [(d, "09:00", "17:00") for d in range(7)],
                                    [(d, "22:00", "02:00") for d in range(7)]]),
       later_hours_for_p=st.sampled_from([None, [(d, "09:00", "17:00") for d in range(7)],
                                          [(d, "00:00", "06:00") for d in range(0, 7, 2)]]),
       silent_after=st.sampled_from([120, 30]))
def test_kept_incidents_equal_a_full_recomputation(app, tmp_path, batches, hours_for_p,
                                                  later_hours_for_p, silent_after):
    note(f"batches={batches!r} hours_for_p={hours_for_p!r} "
         f"later_hours_for_p={later_hours_for_p!r}")
    app.config["SILENT_AFTER_MINUTES"] = silent_after
    # Hourly polls over 12 days (some minutes off the hour), in batches that may go back in
    # time (late polls) and repeat an instant (re-sent rows, the later status wins).
    with app.app_context(), db.engine.begin() as conn:
        for table in ("webhook_notice", "webhook_delivery", "webhook_event", "incident",
                      "live_store", "live_meta", "store_status", "business_hours",
                      "store_timezone", "store"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    for number, batch in enumerate(batches):
        polls = [(s, BASE + h * HOUR_US + m * MIN_US * (m % 3 == 0), a)
                 for s, h, m, a in batch]
        first = number == 0
        # The last of several batches may bring new hours for p and a new zone for q: the
        # stores computed again take them from what that ingest wrote.
        later = number == len(batches) - 1 and not first and later_hours_for_p is not None
        hours_now = hours_for_p if first else later_hours_for_p if later else None
        zones_now = [("p", "America/New_York"), ("q", "Asia/Kolkata")] if first else \
            [("q", "UTC")] if later else None
        feed(app, tmp_path, polls,
             hours=None if hours_now is None else [("p", d, a, b) for d, a, b in hours_now],
             zones=zones_now)
        full, expected_states, (all_polls, hours, zones, now) = full_recomputation(app)
        assert kept(app) == full
        assert kept_states(app) == expected_states
        check_down_without_incident(app, full, expected_states)
    # Restricted to the last week, they are the store timelines' incidents. While the data
    # is younger than a week, the timeline also draws the part of the week before the
    # earliest poll (as the first observation says); a kept incident begins no earlier than
    # the data, so both are compared from there.
    timelines = build_timelines(all_polls, hours, zones, now)
    seg = timelines.segments
    week_start = max(now - 7 * 24 * HOUR_US, int(all_polls["timestamp_us"].min()))
    week = sorted((timelines.store_ids[s], max(int(a), week_start), int(b)) for s, a, b, up in
                  zip(seg.store, seg.start_us, seg.end_us, seg.active)
                  if not up and b > week_start)
    clipped = sorted((s, max(a, week_start), now if b is None else b) for s, a, b in kept(app)
                     if (now if b is None else b) > week_start)
    assert clipped == week


def test_hours_changed_by_another_process_are_seen(app, app_factory, tmp_path):
    # Two apps on one database, as two serving processes. "x" (no hours: open 24x7) is
    # polled hourly by the first; the second loads hours 09:00-10:00 (UTC) for it. The
    # first's next ingest (12:00, active, outside those hours) finds "x" closed, and its
    # incident of 10:00-11:30 (inactive 11:00, active 12:00) is none: 11:00 is outside
    # business hours too, so the store has no observation in business time at all.
    other = app_factory()
    feed(app, tmp_path, [("x", "2024-01-01 10:00", True)], zones=[("x", "UTC")])
    feed(app, tmp_path, [("x", "2024-01-01 11:00", False)])  # the first keeps the hours
    assert kept(app) == [("x", us("2024-01-01 10:30"), None)]
    feed(other, tmp_path, [], hours=[("x", 0, "09:00", "10:00")])
    feed(app, tmp_path, [("x", "2024-01-01 12:00", True)])
    with app.app_context():
        assert [(s["store_id"], s["state"]) for s in read.stores()["stores"]] == [
            ("x", "closed")]
    assert kept(app) == []


def test_removed_polls_leave_the_kept_incidents_a_full_recomputation_gives(app, tmp_path):
    """`flask data delete` (issue 19) changes the polls outside an ingest: the live state
    follows it, and a store left without polls keeps no state and no incident."""
    from app.ingest.remove import delete_polls

    feed(app, tmp_path, [("A", "2023-01-23 10:00:00", True), ("A", "2023-01-23 11:00:00", False),
                         ("A", "2023-01-23 12:00:00", False), ("B", "2023-01-23 10:00:00", False),
                         ("B", "2023-01-23 12:00:00", False)])
    assert {s for s, _a, _b in kept(app)} == {"A", "B"}
    with app.app_context():
        delete_polls(["A"], us("2023-01-23 11:30:00"), None)  # A's 12:00: its incident shrinks
    expected, states_now, _inputs = full_recomputation(app)
    assert kept(app) == expected
    assert kept_states(app) == states_now
    check_down_without_incident(app, expected, states_now)
    with app.app_context():
        delete_polls(["B"])  # every poll of B
    expected, states_now, _inputs = full_recomputation(app)
    assert kept(app) == expected and all(store == "A" for store, _a, _b in expected)
    assert kept_states(app) == states_now and "B" not in kept_states(app)
    check_down_without_incident(app, expected, states_now)
