"""How many polls and stores with polls are loaded: kept by every ingest in `data_version`
(counting 190 M polls takes minutes), and what `GET /api/v1/data` reports. Expected values
are the sets of (store, instant) keys the steps loaded, kept here."""

from datetime import datetime

import pytest
from conftest import write_csv
from test_hourly_copy import _steps

from app.extensions import db
from app.ingest import inventory
from app.ingest.load import ingest
from app.ingest.remove import delete_polls
from app.storage.models import DataVersion


def kept(app):
    with app.app_context():
        return tuple(db.session.execute(db.select(DataVersion.polls,
                                                  DataVersion.stores_with_polls)).one())


def summary(app):
    with app.app_context():
        facts = inventory.data_summary()
        return facts["polls"], facts["stores_with_polls"]


def kept_bounds(app):
    with app.app_context():
        return tuple(db.session.execute(db.select(DataVersion.first_poll_us,
                                                  DataVersion.latest_poll_us)).one())


def summary_bounds(app):
    """The first and latest poll `GET /api/v1/data` shows, as µs since the epoch."""
    with app.app_context():
        facts = inventory.data_summary()
    return tuple(None if facts[name] is None else
                 round(datetime.fromisoformat(facts[name].replace("Z", "+00:00")).timestamp()
                       * 1e6) for name in ("first_poll", "latest_poll"))


@pytest.mark.parametrize("with_copy", [True, False], ids=["copy", "no-copy"])
def test_every_ingest_keeps_the_counts_of_what_is_loaded(app, tmp_path, with_copy):
    if not with_copy:
        app.config["SNAPSHOT_COPY_DIR"] = ""
    assert summary(app) == (0, 0)
    keys = set()
    for step, (path, status) in enumerate(_steps(tmp_path)):
        with app.app_context():
            ingest(path)
        if status is not None:
            keys |= set(zip(status["store_id"], status["timestamp_us"]))
        expected = (len(keys), len({store for store, _ in keys}))
        assert summary(app) == expected, path
        # With a copy (or into an empty database), ingest knows which stores are new;
        # without one, the stores are counted when asked.
        assert kept(app) == (expected if with_copy or step == 0 else (expected[0], None)), \
            path
        # The earliest and latest poll: kept by every ingest, copy or not.
        instants = [instant for _, instant in keys]
        assert kept_bounds(app) == (min(instants), max(instants)), path
        assert summary_bounds(app) == (min(instants), max(instants)), path


def test_a_removal_keeps_the_poll_count_and_the_stores_are_counted_again(app, tmp_path):
    steps = _steps(tmp_path)
    with app.app_context():
        ingest(steps[0][0])
    status = steps[0][1]
    gone = status["store_id"].iloc[0]
    with app.app_context():
        delete_polls([gone])
    left = status[status["store_id"] != gone]
    expected = (len(left), left["store_id"].nunique())
    assert kept(app) == (expected[0], None)
    assert summary(app) == expected
    # Not kept after a removal (the removed polls may have been the earliest): found.
    assert kept_bounds(app) == (None, None)
    assert summary_bounds(app) == (left["timestamp_us"].min(), left["timestamp_us"].max())
    hour_path, hour = steps[1]
    with app.app_context():
        ingest(hour_path)
    keys = set(zip(left["store_id"], left["timestamp_us"])) | \
        set(zip(hour["store_id"], hour["timestamp_us"]))
    assert summary(app) == (len(keys), len({store for store, _ in keys}))
    assert kept(app) == (len(keys), None)
    # The next ingest finds the bounds before it, and keeps them again.
    instants = [instant for _, instant in keys]
    assert kept_bounds(app) == (min(instants), max(instants))


@pytest.mark.parametrize("with_copy", [True, False], ids=["copy", "no-copy"])
def test_the_stores_facts_follow_hours_and_zone_files(app, tmp_path, monkeypatch, with_copy):
    # Kept by every ingest in data_version, so that answering them probes no store: each
    # hours or timezone file and each new store must show at once. Three stores with
    # polls, no hours, no zones.
    if not with_copy:
        app.config["SNAPSHOT_COPY_DIR"] = ""

    def facts():
        with app.app_context():
            stored = db.session.execute(db.select(
                DataVersion.stores, DataVersion.stores_without_business_hours,
                DataVersion.stores_without_timezone,
                DataVersion.stores_with_unknown_timezone)).one()
            with monkeypatch.context() as patched:  # answered from what ingest kept
                patched.setattr(inventory, "schedule_facts", None)
                found = inventory.data_summary()
        answered = (found["stores"], found["stores_without_business_hours"],
                    found["stores_without_timezone"], found["stores_with_unknown_timezone"])
        assert tuple(stored) == answered
        return answered

    write_csv(tmp_path / "polls", "store_status.csv", "store_id,timestamp_utc,status\n"
              "a,2023-01-25 12:00:00 UTC,active\nb,2023-01-25 12:00:00 UTC,active\n"
              "c,2023-01-25 12:00:00 UTC,active")
    write_csv(tmp_path / "hours", "business_hours.csv",
              "store_id,dayOfWeek,start_time_local,end_time_local\na,0,09:00,17:00")
    write_csv(tmp_path / "zones", "store_timezone.csv",
              "store_id,timezone_str\na,America/Chicago\nb,Mars/Olympus_Mons")
    write_csv(tmp_path / "more", "store_status.csv",
              "store_id,timestamp_utc,status\nd,2023-01-25 13:00:00 UTC,active")
    expected = [(3, 3, 3, 0), (3, 2, 3, 0), (3, 2, 1, 1), (4, 3, 2, 1)]
    for folder, facts_after in zip(("polls", "hours", "zones", "more"), expected):
        with app.app_context():
            ingest(tmp_path / folder)
        assert facts() == facts_after, folder


def test_the_stores_facts_count_only_for_the_version_they_were_kept_for(app, tmp_path):
    # A removal keeps them (stores, hours and zones are unchanged); a new data version that
    # did not keep them (a writer that does not know them) leaves them unused, not wrong.
    write_csv(tmp_path / "polls", "store_status.csv", "store_id,timestamp_utc,status\n"
              "a,2023-01-25 12:00:00 UTC,active\nb,2023-01-25 12:00:00 UTC,active")
    with app.app_context():
        ingest(tmp_path / "polls")
        delete_polls(["a"])
        after_removal = inventory.kept_schedule_facts(db.session.connection())
        db.session.execute(db.update(DataVersion).values(version="written-elsewhere"))
        db.session.commit()
        after_other_writer = inventory.kept_schedule_facts(db.session.connection())
        answered = inventory.data_summary()["stores"]
    assert after_removal == {"stores": 2, "stores_without_business_hours": 2,
                             "stores_without_timezone": 2, "stores_with_unknown_timezone": 0}
    assert after_other_writer is None
    assert answered == 2  # counted
