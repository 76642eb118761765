"""The columnar copy of the data: used when it is of the current data version, never
otherwise, and never needed (without it reports read the database)."""

import shutil
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from conftest import GOLDEN_DIR, write_csv

from app.extensions import db
from app.ingest.load import ingest
from app.reports import pipeline


def report(app):
    with app.app_context():
        return pipeline.compute_report().csv


def database_report(app):
    """The report read from the database alone: the reference for the copy."""
    root = app.config["SNAPSHOT_COPY_DIR"]
    app.config["SNAPSHOT_COPY_DIR"] = ""
    try:
        return report(app)
    finally:
        app.config["SNAPSHOT_COPY_DIR"] = root


def copies_root(app):
    return Path(app.config["SNAPSHOT_COPY_DIR"])


def copies(app):
    """{version: folder} of the complete copies kept for the test's database."""
    root = copies_root(app)
    return {path.name: path for folder in root.iterdir() for path in folder.iterdir()
            if not path.name.startswith(".")} if root.exists() else {}


def data_version(app):
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT version FROM data_version")).scalar()


def test_ingest_writes_the_copy_of_its_version_and_reports_read_it(app):
    case = GOLDEN_DIR / "c_overnight"
    with app.app_context():
        ingest(case)
    version = data_version(app)
    assert list(copies(app)) == [version]
    assert report(app) == (case / "expected.csv").read_text()

    # The report really reads the copy: emptied of polls, it gives a report of no store.
    polls = copies(app)[version] / "polls.arrow"
    schema = pa.ipc.open_file(pa.memory_map(str(polls))).schema
    with pa.OSFile(str(polls), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(schema.empty_table())
    assert len(report(app).splitlines()) == 1

    # Without the copy, the database answers, and the copy is written again.
    shutil.rmtree(copies(app)[version])
    assert report(app) == (case / "expected.csv").read_text()
    assert list(copies(app)) == [version]


def test_every_ingest_makes_a_new_version_and_the_old_copy_is_never_used(app, tmp_path):
    with app.app_context():
        ingest(GOLDEN_DIR / "h_duplicates")
    first = data_version(app)
    before = report(app)
    more = write_csv(tmp_path / "more", "store_status.csv", """store_id,timestamp_utc,status
        8001,2023-01-25 10:00:00 UTC,inactive
        9999,2023-01-25 12:00:00 UTC,active""")
    with app.app_context():
        ingest(more)
    second = data_version(app)
    assert second != first and list(copies(app)) == [second]
    after = report(app)
    assert after != before and "\n9999," in after
    # The copy that ingest merged from the old copy and its own rows is the database's data.
    assert after == database_report(app)


def test_copy_written_by_a_report_after_an_ingest_without_one(app, tmp_path):
    # No copy when the second ingest starts: it cannot know all polls without reading
    # them, so the first report reads the database and writes the copy.
    with app.app_context():
        ingest(GOLDEN_DIR / "a_spec_example")
    shutil.rmtree(copies_root(app))
    more = write_csv(tmp_path / "more", "store_status.csv",
                     "store_id,timestamp_utc,status\nz,2023-01-25 12:00:00 UTC,active")
    with app.app_context():
        ingest(more)
    assert copies(app) == {}
    text = report(app)
    assert list(copies(app)) == [data_version(app)]
    assert report(app) == text == database_report(app)


def test_without_copies_everything_works(app):
    root = copies_root(app)
    app.config["SNAPSHOT_COPY_DIR"] = ""
    case = GOLDEN_DIR / "j_end_235959"
    with app.app_context():
        ingest(case)
    assert report(app) == (case / "expected.csv").read_text()
    assert not root.exists()


def test_a_copy_read_from_the_database_is_in_store_order_and_later_hours_merge_into_it(
        app, tmp_path):
    # The table keeps polls by hour first; the copy (and the part the next hour adds to
    # it) by store, then instant. Three stores, polls over three hours, given out of order.
    rows = [("b", "2023-01-25 12:10:00"), ("a", "2023-01-25 14:05:00"),
            ("c", "2023-01-25 13:00:00"), ("a", "2023-01-25 12:59:59"),
            ("b", "2023-01-25 14:30:00"), ("c", "2023-01-25 12:00:01"),
            ("a", "2023-01-25 13:30:00")]
    first = write_csv(tmp_path / "first", "store_status.csv", "store_id,timestamp_utc,status\n"
                      + "\n".join(f"{s},{t} UTC,active" for s, t in rows))
    with app.app_context():
        ingest(first)
    shutil.rmtree(copies_root(app))  # the next report reads the database
    report(app)
    (folder,) = copies(app).values()
    polls = pa.ipc.open_file(pa.memory_map(str(folder / "polls.arrow"))).read_all()
    with app.app_context(), db.engine.connect() as conn:
        key = dict(conn.execute(sa.text("SELECT store_id, id FROM store")).all())
    expected = sorted((key[s], int(pd_instant(t))) for s, t in rows)
    assert list(zip(polls["store_pk"].to_pylist(), polls["timestamp_us"].to_pylist())) == \
        expected
    # The next hour, added to that copy: one poll of each store, one of them inactive.
    later = write_csv(tmp_path / "later", "store_status.csv",
                      "store_id,timestamp_utc,status\na,2023-01-25 15:01:00 UTC,inactive\n"
                      "b,2023-01-25 15:02:00 UTC,active\nc,2023-01-25 15:03:00 UTC,active")
    with app.app_context():
        ingest(later)
    assert report(app) == database_report(app)


def pd_instant(text):
    """µs since the epoch of a UTC wall time, worked out without the service's code."""
    from datetime import datetime, timezone
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000
