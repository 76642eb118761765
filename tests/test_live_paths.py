"""The ways app.live brings the live state up to date give one and the same result.

An ingest may find every poll in `stored_polls` (when there is a columnar copy) or read
them back from the database; the process may keep the live rows, hours and zones of the
ingest before, or start cold, or another process may have ingested in between; most stores
of an hourly feed are "quiet" (no computation), others are computed from their latest
observation or from all their polls. Whatever the path, the kept state, incidents and
events must be the same, and the same as a full recomputation from all polls.
"""

import itertools
import json

import numpy as np
import sqlalchemy as sa
from test_live_state import feed, full_recomputation, kept, kept_states, us

from app.engine.instants import iso_instant
from app.extensions import db
from app.live import read, webhooks
from app.storage.models import LiveStore, Store, StoreStatus, WebhookEvent

HOUR_US = 3_600_000_000
MIN_US = 60_000_000
START = us("2024-03-04 00:00")  # a Monday

# 14 stores, so that store keys sorted as text (1, 10, 11, ..., 2) and as numbers differ.
STORES = [f"st-{n:02d}" for n in range(14)]
HOURS = (
    # st-04..07: weekdays 09:00-17:00 in New York; st-08..10 overnight in Kolkata;
    # st-11..13 two spans a day in Berlin; st-00..03 none (open 24x7, in Chicago).
    [(f"st-{n:02d}", d, "09:00", "17:00") for n in range(4, 8) for d in range(5)]
    + [(f"st-{n:02d}", d, "22:00", "02:00") for n in range(8, 11) for d in range(7)]
    + [(f"st-{n:02d}", d, a, b) for n in range(11, 14) for d in range(7)
       for a, b in (("10:00", "14:00"), ("16:00", "20:00"))])
ZONES = ([(f"st-{n:02d}", "America/New_York") for n in range(4, 8)]
         + [(f"st-{n:02d}", "Asia/Kolkata") for n in range(8, 11)]
         + [(f"st-{n:02d}", "Europe/Berlin") for n in range(11, 14)])


def scenario(hours=54, seed=7):
    """Hourly batches: (polls, hours rows or None). Each store is polled once an hour at a
    random minute (st-03 stops after hour 20: silent), status in runs; every 7th hour also
    re-sends an earlier poll with the other status (late); hour 30 brings a poll earlier
    than all data (the data's start moves); hour 40 new hours for st-05 and st-12."""
    rng = np.random.default_rng(seed)
    active = {store: True for store in STORES}
    sent = []
    batches = []
    for hour in range(hours):
        polls = []
        for store in STORES:
            if store == "st-03" and hour > 20 or rng.random() < 0.1:
                continue
            if rng.random() < 0.2:
                active[store] = not active[store]
            moment = START + hour * HOUR_US + int(rng.integers(0, 60)) * MIN_US
            polls.append((store, moment, active[store]))
        if hour % 7 == 6:
            store, moment, status = sent[-int(rng.integers(5, 30))]
            polls.append((store, moment, not status))
        if hour == 30:
            polls.append(("st-01", START - 5 * HOUR_US, False))
        sent += polls
        new_hours = None
        if hour == 40:
            new_hours = [("st-05", d, "06:00", "23:00") for d in range(7)] + [
                ("st-12", d, "00:00", "00:00") for d in range(7)]
        batches.append((polls, new_hours))
    return batches


def live_rows(app):
    """The live_store rows by store id (every column)."""
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(sa.select(Store.store_id, LiveStore.state, LiveStore.since_us,
                                      LiveStore.latest_us, LiveStore.counted_us,
                                      LiveStore.counted_active, LiveStore.next_us)
                            .join(Store, Store.id == LiveStore.store_pk)
                            .order_by(Store.store_id)).all()
    return [tuple(row) for row in rows]


def told(app):
    """The events written, without their ids and times: (type, what it says)."""
    with app.app_context(), db.engine.connect() as conn:
        bodies = conn.execute(sa.select(WebhookEvent.body)).scalars().all()
    events = []
    for body in map(json.loads, bodies):
        item = body.get("incident") or body["store"]
        events.append((body["type"], json.dumps({k: v for k, v in item.items() if k != "id"},
                                                sort_keys=True)))
    return sorted(events)


def stores_now(app):
    """Every store's state, since and latest poll as the API gives them; the latest poll
    checked against the polls themselves."""
    with app.app_context():
        listed = read.stores(limit=500)["stores"]
        with db.engine.connect() as conn:
            latest = dict(conn.execute(sa.select(Store.store_id,
                                                 sa.func.max(StoreStatus.timestamp_us))
                                       .join(Store, Store.id == StoreStatus.store_pk)
                                       .group_by(Store.store_id)).all())
    assert {s["store_id"]: s["latest_poll"] for s in listed} == {
        store: iso_instant(instant) for store, instant in latest.items()}
    return listed


def wipe(app):
    """Empty the data and the live tables, numbering stores and incidents from 1 again
    (which rows are written when depends on the stores' keys)."""
    tables = ("webhook_attempt", "webhook_notice", "webhook_delivery", "webhook_event",
              "webhook", "incident", "live_store", "live_meta", "store_status",
              "business_hours", "store_timezone", "store")
    with app.app_context(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:  # SQLite numbers rows from the largest key there is
            for table in tables:
                conn.execute(sa.text(f"DELETE FROM {table}"))


def run(apps, tmp_path, batches, before_each=lambda app: None, check_every=None):
    """Ingest the batches through `apps` in turn; the state after each batch."""
    tmp_path.mkdir()
    with apps[0].app_context():
        webhooks.add_webhook("http://127.0.0.1:9/hook", "s", allow_private=True)
    feed(apps[0], tmp_path, [], hours=HOURS, zones=ZONES)
    states = []
    for number, ((polls, hours), app) in enumerate(zip(batches, itertools.cycle(apps))):
        before_each(app)
        feed(app, tmp_path, polls, hours=hours)
        states.append((kept(app), live_rows(app), told(app), stores_now(app)))
        if check_every and number % check_every == check_every - 1:
            full, expected_states, _inputs = full_recomputation(app)
            assert kept(app) == full, f"batch {number}"
            assert kept_states(app) == expected_states, f"batch {number}"
    return states


def test_every_path_gives_the_state_a_full_recomputation_gives(app_factory, tmp_path):
    batches = scenario()
    copies = tmp_path / "copies"
    # 1. One process with a columnar copy: every ingest sends stored_polls, and the
    #    process keeps its live rows, hours and zones from one ingest to the next.
    warm = app_factory(SNAPSHOT_COPY_DIR=str(copies), WEBHOOK_ALLOW_PRIVATE=True)
    expected = run([warm], tmp_path / "warm", batches, check_every=3)
    assert {kind for kind, _ in expected[-1][2]} >= {
        "incident.opened", "incident.closed", "incident.updated", "incident.removed",
        "store.silent"}
    assert any(end is None for _store, _start, end in expected[-1][0])  # an open incident
    wipe(warm)

    # 2. No copy (polls read back from the database) and a cold process at every ingest
    #    (live rows, hours and zones read back too).
    cold = app_factory(SNAPSHOT_COPY_DIR="", WEBHOOK_ALLOW_PRIVATE=True)
    got = run([cold], tmp_path / "cold", batches,
              before_each=lambda app: app.extensions.pop("live_kept", None))
    for number, (one, other) in enumerate(zip(expected, got)):
        assert one == other, f"batch {number}"
    wipe(cold)

    # 3. Two processes taking turns, with copies: each finds the other's ingest in between
    #    and must not use what it kept.
    first = app_factory(SNAPSHOT_COPY_DIR=str(copies), WEBHOOK_ALLOW_PRIVATE=True)
    second = app_factory(SNAPSHOT_COPY_DIR=str(copies), WEBHOOK_ALLOW_PRIVATE=True)
    got = run([first, second, second], tmp_path / "turns", batches)
    for number, (one, other) in enumerate(zip(expected, got)):
        assert one == other, f"batch {number}"


def test_an_inactive_store_at_its_opening_gets_its_incident_without_a_poll(app, tmp_path):
    # "z" is open 09:00-17:00 (UTC) every day, "o" 24x7. Monday 1 January 2024: z active at
    # 10:00, inactive at 16:00: down from the midpoint 13:00 to closing time 17:00. Tuesday:
    # z polled at 08:30 (outside its hours: not an observation), o at 09:00, so `now` is
    # z's opening instant: z is down (its latest observation, Monday 16:00, was inactive)
    # but its incident has no length yet. o at 10:00: z's incident runs 09:00-10:00, open,
    # though z has no new poll.
    hours = [("z", day, "09:00", "17:00") for day in range(7)]
    feed(app, tmp_path, [("z", "2024-01-01 10:00", True), ("z", "2024-01-01 16:00", False),
                         ("o", "2024-01-01 10:00", True)],
         hours=hours, zones=[("z", "UTC"), ("o", "UTC")])
    assert kept(app) == [("z", us("2024-01-01 13:00"), None)]
    feed(app, tmp_path, [("z", "2024-01-02 08:30", True), ("o", "2024-01-02 09:00", True)])
    assert kept(app) == [("z", us("2024-01-01 13:00"), us("2024-01-01 17:00"))]
    assert kept_states(app) == {"o": "up", "z": "down"}
    feed(app, tmp_path, [("o", "2024-01-02 10:00", True)])
    assert kept(app) == [("z", us("2024-01-01 13:00"), us("2024-01-01 17:00")),
                         ("z", us("2024-01-02 09:00"), None)]
    assert kept_states(app) == {"o": "up", "z": "down"}
    full, expected_states, _inputs = full_recomputation(app)
    assert kept(app) == full and kept_states(app) == expected_states


def test_quiet_stores_are_not_computed_and_keep_their_incidents(app, tmp_path, monkeypatch):
    # "a" active and "d" inactive, polled every hour, open 24x7 (UTC): after the first
    # ingest they are quiet (each poll says what the one before said), so no store is
    # computed again, yet their rows follow the polls and d's incident stays open from
    # where the data begins.
    from app.live import incidents

    feed(app, tmp_path, [("a", "2024-01-01 00:10", True), ("d", "2024-01-01 00:20", False)],
         zones=[("a", "UTC"), ("d", "UTC")])
    computed = []
    original = incidents._recompute

    def recompute(conn, pks, *rest):
        computed.append(pks.tolist())
        return original(conn, pks, *rest)

    monkeypatch.setattr(incidents, "_recompute", recompute)
    for hour in range(1, 4):
        feed(app, tmp_path, [("a", f"2024-01-01 0{hour}:10", True),
                             ("d", f"2024-01-01 0{hour}:20", False)])
    assert computed == []
    assert kept(app) == [("d", us("2024-01-01 00:10"), None)]
    # The up store's row was not written: it lags behind the polls (by less than
    # WRITE_LAG_US), and what is read completes it. The down store's row never lags.
    rows = {row[0]: row[1:] for row in live_rows(app)}
    assert rows["a"][:5] == ("up", us("2024-01-01 00:20"), us("2024-01-01 00:10"),
                             us("2024-01-01 00:10"), True)
    assert rows["d"][:5] == ("down", us("2024-01-01 00:20"), us("2024-01-01 03:20"),
                             us("2024-01-01 03:20"), False)
    assert [(s["store_id"], s["state"], s["latest_poll"]) for s in stores_now(app)] == [
        ("a", "up", "2024-01-01T03:10:00Z"), ("d", "down", "2024-01-01T03:20:00Z")]
    # "a" inactive at 04:10: it is computed (its status changed), its incident opens at the
    # midpoint 03:40.
    feed(app, tmp_path, [("a", "2024-01-01 04:10", False), ("d", "2024-01-01 04:20", False)])
    assert computed == [[_pk(app, "a")]]
    assert kept(app) == [("a", us("2024-01-01 03:40"), None), ("d", us("2024-01-01 00:10"), None)]
    full, expected_states, _inputs = full_recomputation(app)
    assert kept(app) == full and kept_states(app) == expected_states


def _pk(app, store_id):
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(sa.select(Store.id).where(Store.store_id == store_id)).scalar()


def test_a_lagging_row_read_back_is_completed_with_its_older_polls(app_factory, tmp_path):
    # "a" and "o" open 24x7 (UTC), active, polled at 00:10 and 00:05, then hourly to
    # 02:10 / 02:05: quiet, so a's row keeps its first poll (it lags). Then only o is
    # polled, to 05:05, by processes that start cold and have no columnar copy: each reads
    # the rows back and completes a's from its polls (02:10, older than the last two
    # hours). At 06:10 a is inactive: computed from its latest observation 02:10, its
    # incident starts half-way, at 04:10 (from 00:10 it would be 03:10). Nobody is silent
    # within 600 minutes.
    cold = app_factory(SNAPSHOT_COPY_DIR="", SILENT_AFTER_MINUTES=600)

    def ingest(polls):
        cold.extensions.pop("live_kept", None)
        feed(cold, tmp_path, polls)

    feed(cold, tmp_path, [], zones=[("a", "UTC"), ("o", "UTC")])
    for hour in range(3):
        ingest([("a", f"2024-01-01 0{hour}:10", True), ("o", f"2024-01-01 0{hour}:05", True)])
    for hour in range(3, 6):
        ingest([("o", f"2024-01-01 0{hour}:05", True)])
    assert {row[0]: row[3] for row in live_rows(cold)}["a"] == us("2024-01-01 00:10")
    assert [(s["store_id"], s["state"], s["latest_poll"]) for s in stores_now(cold)] == [
        ("a", "up", "2024-01-01T02:10:00Z"), ("o", "up", "2024-01-01T05:05:00Z")]
    ingest([("a", "2024-01-01 06:10", False), ("o", "2024-01-01 06:05", True)])
    assert kept(cold) == [("a", us("2024-01-01 04:10"), None)]
    full, expected_states, _inputs = full_recomputation(cold)
    assert kept(cold) == full and kept_states(cold) == expected_states
