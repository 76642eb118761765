"""The hourly feed: an ingest adds its polls to the columnar copy of the data before it (a
new part, or merged with the stored polls) and links the files it did not change, instead
of reading everything back. The copy it leaves must be exactly the data in the database,
and the counts those of the database."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_csv
from test_snapshot_copy import copies, data_version, database_report, report

from app.extensions import db
from app.ingest.load import ingest
from app.storage import columnar, snapshot
from bench.generate import Dataset, generate_dataset, next_hours, write_dataset, write_status

STORES = 40
# The parts of the copy's polls after each step: an hour later than every stored poll adds
# one; polls between stored ones, or again, are merged with them into one.
EXPECTED_PARTS = {"base": 1, "hour-1": 2, "hour-3": 3, "hour-2": 1, "hour-2-again": 1,
                  "mixed": 1, "hours": 1, "zones": 1}


def _status_file(folder, status):
    write_status(Dataset(status=status.reset_index(drop=True), hours=None, timezones=None),
                 folder)
    return folder


def _steps(tmp_path):
    """The whole set, then hourly files: in order, out of order, sent twice, with changed
    statuses, a new store, and hours and zones files. Each step: (path, status frame)."""
    base = generate_dataset(STORES, 3, seed=7)
    write_dataset(base, tmp_path / "base")
    hours = next_hours(STORES, seed=7, hours=4).status
    hour = [hours.iloc[i * STORES:(i + 1) * STORES] for i in range(4)]
    steps = [(tmp_path / "base", base.status)]
    steps.append((_status_file(tmp_path / "hour-1", hour[0]), hour[0]))
    # Hour 3 before hour 2: hour 2's polls then fall between stored polls.
    steps.append((_status_file(tmp_path / "hour-3", hour[2]), hour[2]))
    steps.append((_status_file(tmp_path / "hour-2", hour[1]), hour[1]))
    # Hour 2 again: all duplicates, half of them with the other status (the last one wins).
    again = hour[1].copy()
    flip = np.arange(len(again)) % 2 == 0
    again.loc[flip, "active"] = ~again.loc[flip, "active"]
    steps.append((_status_file(tmp_path / "hour-2-again", again), again))
    # Old polls re-sent with a flipped status, a poll before every other one, a new store,
    # and the file's own repeats (the last row of a store and instant wins).
    old = base.status.sample(25, random_state=1)
    old = old.assign(active=~old["active"])
    early = base.status.iloc[:3].assign(timestamp_us=base.status["timestamp_us"].min() - 10**9)
    newcomer = pd.DataFrame({"store_id": ["new-store"] * 2,
                             "timestamp_us": [hour[3]["timestamp_us"].max()] * 2,
                             "active": [True, False]})
    mixed = pd.concat([hour[3], old, early, newcomer])
    steps.append((_status_file(tmp_path / "mixed", mixed), mixed))
    # Hours and zones for some stores (no status file).
    some = base.hours["store_id"].drop_duplicates().iloc[:5]
    rows = "\n".join(f"{store},{day},08:00,12:00" for store in some for day in range(7))
    write_csv(tmp_path / "hours", "business_hours.csv",
              f"store_id,dayOfWeek,start_time_local,end_time_local\n{rows}")
    steps.append((tmp_path / "hours", None))
    write_csv(tmp_path / "zones", "store_timezone.csv",
              f"store_id,timezone_str\n{some.iloc[0]},Asia/Tokyo\nnew-store,Europe/Paris")
    steps.append((tmp_path / "zones", None))
    return steps


def _database_tables(app):
    with app.app_context(), db.engine.connect() as conn:
        return snapshot.read_tables(conn)


def _sorted(table, keys):
    return table.select(sorted(table.column_names)).sort_by([(k, "ascending") for k in keys])


def _same_tables(copy, database):
    """The copy holds exactly the database's rows (polls in the table's key order)."""
    polls = database["polls"].sort_by([("store_pk", "ascending"),
                                       ("timestamp_us", "ascending")])
    assert copy["polls"]["store_pk"].to_pylist() == polls["store_pk"].to_pylist()
    assert copy["polls"]["timestamp_us"].to_pylist() == polls["timestamp_us"].to_pylist()
    assert [bool(x) for x in copy["polls"]["active"].to_pylist()] == \
        [bool(x) for x in polls["active"].to_pylist()]
    for name, keys in (("stores", ["id"]), ("zones", ["store_pk"]),
                       ("hours", ["store_pk", "day_of_week", "start_local_s"])):
        assert _sorted(copy[name], keys).to_pylist() == \
            _sorted(database[name], keys).to_pylist(), name


@pytest.mark.parametrize("with_copy", [True, False], ids=["copy", "no-copy"])
def test_hourly_ingests_leave_the_copy_a_full_rewrite_would(app, tmp_path, with_copy):
    if not with_copy:
        app.config["SNAPSHOT_COPY_DIR"] = ""
    stored = set()  # (store, instant) keys loaded so far: the expected counts
    previous = None
    for path, status in _steps(tmp_path):
        with app.app_context():
            summary = ingest(path)
        if status is not None:
            keys = set(zip(status["store_id"], status["timestamp_us"]))
            counts = next(f for f in summary.files if f.kind == "status")
            assert (counts.read, counts.loaded, counts.duplicate, counts.rejected) == \
                (len(status), len(keys - stored), len(status) - len(keys - stored), 0), path
            stored |= keys
        if not with_copy:
            continue
        version = data_version(app)
        assert list(copies(app)) == [version]
        folder = copies(app)[version]
        kept = columnar.Copies(folder.parent).load(version)
        _same_tables({**kept, "polls": kept["polls"].merged()}, _database_tables(app))
        assert report(app) == database_report(app), path
        inodes = {file.name: file.stat().st_ino for file in folder.glob("*.arrow")}
        name = Path(path).name
        assert len(kept["polls"].parts) == EXPECTED_PARTS[name], name
        if previous is not None and name in ("hour-1", "hour-3"):
            # Every poll later than its store's: a new part; every other file is linked.
            assert {n: inodes[n] == previous.get(n) for n in inodes} == \
                {**{n: True for n in previous}, f"polls.{EXPECTED_PARTS[name] - 1}.arrow": False}
        elif previous is not None and name.startswith("hour-"):
            # Polls between stored ones: all merged into one part, the rest linked.
            assert {n: inodes[n] == previous.get(n) for n in inodes} == \
                {"polls.arrow": False, "hours.arrow": True, "stores.arrow": True,
                 "zones.arrow": True}
        previous = inodes
    assert len(_database_tables(app)["polls"]) == len(stored)
