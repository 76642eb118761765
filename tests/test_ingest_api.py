"""POST /api/v1/ingest and what it records, through the test client: uploads of every
accepted form, bad input refused whole, zip archives checked before reading, one ingest at
a time, and the listing, rejection and data endpoints."""

import io
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import BUNDLED_DATA, GOLDEN_DIR, TEST_DATABASE

from app.api import data as data_api
from app.extensions import db

SPEC_CASE = GOLDEN_DIR / "a_spec_example"
CASE_M = GOLDEN_DIR / "m_formats_aliases_rejects"
STATUS_CSV = (SPEC_CASE / "store_status.csv").read_bytes()


def zipped(folder=None, members=None):
    """A zip archive (bytes) of the CSV files of `folder`, or of `members` {name: bytes}."""
    members = members or {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))
                          if p.name != "expected.csv"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def row_counts(app):
    """Rows in every data table: what a refused upload must leave unchanged."""
    with app.app_context(), db.engine.connect() as conn:
        return {name: conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar()
                for name in ("ingest", "ingest_file", "ingest_rejection", "store",
                             "store_status", "business_hours", "store_timezone")}


def test_zip_upload_answers_the_accounting_and_is_recorded(app, client):
    response = client.post("/api/v1/ingest", data=zipped(SPEC_CASE),
                           content_type="application/zip")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    # The spec case's files have 2 hours rows, 5 polls and 2 zone rows, all good.
    assert [(f["name"], f["read"], f["loaded"], f["duplicate"], f["rejected"])
            for f in body["files"]] == [("business_hours.csv", 2, 2, 0, 0),
                                        ("store_status.csv", 5, 5, 0, 0),
                                        ("store_timezone.csv", 2, 2, 0, 0)]
    assert (body["read"], body["loaded"], body["rejected"]) == (9, 9, 0)
    assert body["already_loaded"] is False and body["rejections"] == []
    assert response.headers["Location"] == f"/api/v1/ingests/{body['ingest_id']}"
    record = client.get(response.headers["Location"]).get_json()
    assert record["files"] == body["files"] and record["fingerprint"] == body["fingerprint"]
    listed = client.get("/api/v1/ingests").get_json()
    assert listed["total"] == 1 and listed["ingests"][0]["ingest_id"] == body["ingest_id"]


@pytest.mark.parametrize("how", ["multipart", "raw with kind", "raw with filename"])
def test_one_csv_by_every_accepted_form(app, client, how):
    if how == "multipart":
        response = client.post("/api/v1/ingest", content_type="multipart/form-data",
                               data={"file": (io.BytesIO(STATUS_CSV), "status.csv")})
    elif how == "raw with kind":
        response = client.post("/api/v1/ingest?kind=status", data=STATUS_CSV,
                               content_type="text/csv")
    else:
        response = client.post("/api/v1/ingest?filename=store_status.csv", data=STATUS_CSV,
                               content_type="text/csv; charset=utf-8")
    assert response.status_code == 201, response.get_json()
    assert [(f["kind"], f["loaded"]) for f in response.get_json()["files"]] == [("status", 5)]
    assert row_counts(app)["store_status"] == 5


def test_identical_upload_is_recognised_and_not_loaded_twice(app, client):
    first = client.post("/api/v1/ingest?kind=status", data=STATUS_CSV, content_type="text/csv")
    before = row_counts(app)
    # The same bytes, sent another way, are the same data.
    again = client.post("/api/v1/ingest", content_type="multipart/form-data",
                        data={"file": (io.BytesIO(STATUS_CSV), "store_status.csv")})
    assert again.status_code == 200
    body = again.get_json()
    assert body["already_loaded"] is True
    assert body["ingest_id"] == first.get_json()["ingest_id"]
    assert row_counts(app) == before


def test_rejections_are_paged_in_the_order_they_were_met(app, client):
    response = client.post("/api/v1/ingest", data=zipped(CASE_M),
                           content_type="application/zip")
    assert response.status_code == 201
    ingest_id = response.get_json()["ingest_id"]
    # tests/golden/README.md: case m rejects hours lines 3-6, status lines 5, 6, 7 and 10,
    # and zone line 4; files load in the order hours, status, timezone.
    expected = ([("Menu_Hours.csv", n) for n in (3, 4, 5, 6)]
                + [("Status.csv", n) for n in (5, 6, 7, 10)] + [("TimeZones.csv", 4)])
    assert [(r["file"], r["line"]) for r in response.get_json()["rejections"]] == expected
    page = client.get(f"/api/v1/ingests/{ingest_id}/rejections?page=2&per_page=3").get_json()
    assert (page["total"], page["page"], page["per_page"]) == (9, 2, 3)
    assert [(r["file"], r["line"]) for r in page["rejections"]] == expected[3:6]
    assert "unknown status" in page["rejections"][2]["reason"]
    assert client.get("/api/v1/ingests/999/rejections").status_code == 404


def test_data_summary(app, client):
    empty = client.get("/api/v1/data").get_json()
    assert empty["polls"] == 0 and empty["latest_poll"] is None
    for query, data, content_type in [
            ("", zipped(SPEC_CASE), "application/zip"), ("", zipped(CASE_M), "application/zip"),
            ("?kind=timezone", b"store_id,timezone_str\n9999,Mars/Base\n", "text/csv")]:
        response = client.post(f"/api/v1/ingest{query}", data=data, content_type=content_type)
        assert response.status_code == 201, response.get_json()
    data = client.get("/api/v1/data").get_json()
    # Spec case: stores 1001 and 9999, 5 polls from 2023-01-23 12:30 to 2023-01-25 18:00,
    # hours and zones for both (9999's zone is then replaced by one that does not exist).
    # Case m (files shown in tests/golden/m_formats_aliases_rejects): stores 007, 9 and
    # 18446744073709551616123 with 5 good polls, all inside the spec case's range; hours for
    # 9 only; zones for 9 and the long id. Its 9 rejected rows: 2 unparseable times, an
    # unknown status, an empty store_id (status) and another (zones), 3 days outside 0-6,
    # one unparseable start time.
    assert data["stores"] == 5 and data["stores_with_polls"] == 5 and data["polls"] == 10
    assert data["first_poll"] == "2023-01-23T12:30:00Z"
    assert data["latest_poll"] == "2023-01-25T18:00:00Z"
    assert data["stores_without_business_hours"] == 2  # 007 and the long id
    assert data["stores_without_timezone"] == 1  # 007
    assert data["stores_with_unknown_timezone"] == 1  # 9999
    assert data["rejected_rows"] == 9 and data["ingests"] == 3
    assert data["rejected_by_reason"] == {
        "unparseable timestamp_utc": 2, "unknown status": 1, "empty store_id": 2,
        "dayOfWeek not in 0-6": 3, "unparseable start_time_local": 1}


def _bomb():
    """A small zip whose one member inflates to 200 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("store_status.csv", "w", force_zip64=True) as member:
            member.write(b"store_id,timestamp_utc,status\n")
            zeros = bytes(1 << 20)
            for _ in range(200):
                member.write(zeros)
    return buffer.getvalue()


BAD_UPLOADS = {
    "empty body": (dict(data=b"", content_type="application/zip"), 400, "empty"),
    "wrong content type": (dict(data=b"{}", content_type="application/json"), 415,
                           "content type"),
    "no content type": (dict(data=STATUS_CSV), 415, "content type"),
    "truncated zip": (dict(data=zipped(SPEC_CASE)[:300], content_type="application/zip"),
                      400, "zip"),
    "not a zip": (dict(data=STATUS_CSV, content_type="application/zip"), 400, "zip"),
    "zip bomb": (dict(data=_bomb(), content_type="application/zip"), 400, "zip bomb"),
    "member outside the archive": (
        dict(data=zipped(members={"../store_status.csv": STATUS_CSV}),
             content_type="application/zip"), 400, "outside the archive"),
    "missing column": (dict(data=b"store_id,status\n1,active\n", content_type="text/csv",
                            query_string={"kind": "status"}), 400, "timestamp_utc"),
    "header with a bare carriage return": (dict(data=b"store_id,\rstatus\n", query_string={
        "kind": "status"}, content_type="text/csv"), 400, "CSV"),
    "CSV of no known kind": (dict(data=STATUS_CSV, content_type="text/csv"), 400, "kind"),
    "unknown kind": (dict(data=STATUS_CSV, content_type="text/csv",
                          query_string={"kind": "menus"}), 400, "kind"),
    "two files in a form": (dict(content_type="multipart/form-data", data={
        "a": (io.BytesIO(STATUS_CSV), "store_status.csv"),
        "b": (io.BytesIO(STATUS_CSV), "status.csv")}), 400, "one file"),
    "a zip without input files": (dict(data=zipped(members={"notes.txt": b"hello"}),
                                       content_type="application/zip"), 400, "none of"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_get_a_clear_error_and_change_nothing(app, client, case):
    client.post("/api/v1/ingest?kind=status", data=STATUS_CSV, content_type="text/csv")
    before = row_counts(app)
    kwargs, status, words = BAD_UPLOADS[case]
    response = client.post("/api/v1/ingest", **kwargs)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] and words in body["message"], body
    assert "\n" not in body["message"] and "Traceback" not in body["message"]
    assert "store-monitor-upload" not in body["message"]  # no temporary path shown
    assert row_counts(app) == before


def test_symlink_member_is_refused(app, client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("store_status.csv")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as Info-ZIP stores one
        archive.writestr(link, "/etc/passwd")
    response = client.post("/api/v1/ingest", data=buffer.getvalue(),
                           content_type="application/zip")
    assert response.status_code == 400 and "link" in response.get_json()["message"]
    assert row_counts(app)["ingest"] == 0


def test_zip_limits_are_settings(app_factory):
    # The bundled data inflates to 3.3 MB: over a 1 MB limit, refused before any reading.
    app = app_factory(ZIP_MAX_UNCOMPRESSED_MB=1)
    data = BUNDLED_DATA.read_bytes()
    response = app.test_client().post("/api/v1/ingest", data=data,
                                      content_type="application/zip")
    assert response.status_code == 400
    assert "bytes uncompressed, more than the 1048576 accepted" in response.get_json()["message"]


def test_too_large_body_is_413_json(app_factory):
    client = app_factory(MAX_UPLOAD_MB=0.001).test_client()  # 1,048 bytes
    big = STATUS_CSV * 10
    assert len(big) > 1100
    raw = client.post("/api/v1/ingest?kind=status", data=big, content_type="text/csv")
    assert raw.status_code == 413 and "MAX_UPLOAD_MB" in raw.get_json()["message"]
    form = client.post("/api/v1/ingest", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(big), "store_status.csv")})
    assert form.status_code == 413 and form.is_json


def test_a_second_ingest_while_one_runs_gets_409(app, client, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real_ingest = data_api.ingest

    def slow_ingest(*args, **kwargs):
        entered.set()
        release.wait(10)
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(data_api, "ingest", slow_ingest)
    first = {}
    worker = threading.Thread(target=lambda: first.update(response=app.test_client().post(
        "/api/v1/ingest?kind=status", data=STATUS_CSV, content_type="text/csv")))
    worker.start()
    assert entered.wait(10)
    second = client.post("/api/v1/ingest", data=zipped(SPEC_CASE),
                         content_type="application/zip")
    release.set()
    worker.join(10)
    assert second.status_code == 409 and "another ingest" in second.get_json()["message"]
    assert first["response"].status_code == 201
    assert row_counts(app)["ingest"] == 1


# Another process that holds an ingest's lock file, as `run.py`'s serving processes share one
# SQLite file: it prints a line once it holds the lock, and keeps it until stdin closes.
HOLD_LOCK_FILE = """
import fcntl, sys
with open(sys.argv[1], "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.mark.skipif(TEST_DATABASE != "sqlite" or sys.platform == "win32",
                    reason="the lock file beside a SQLite file (PostgreSQL: test below)")
def test_ingest_held_by_another_process_gets_409_on_sqlite(app, client):
    with app.app_context():
        lock_file = f"{db.engine.url.database}-ingest.lock"  # as the README names it
    # Leaving the block closes the holder's stdin and waits for it to end.
    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK_FILE, lock_file],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout.readline() == "held\n"
        response = client.post("/api/v1/ingest", data=zipped(SPEC_CASE),
                               content_type="application/zip")
        assert response.status_code == 409
        assert "another ingest" in response.get_json()["message"]
        assert row_counts(app)["ingest"] == 0
    # Once the other process has let go, the same upload is loaded.
    response = client.post("/api/v1/ingest", data=zipped(SPEC_CASE),
                           content_type="application/zip")
    assert response.status_code == 201
    assert row_counts(app)["ingest"] == 1


@pytest.mark.skipif(TEST_DATABASE == "sqlite", reason="PostgreSQL's advisory lock (SQLite's "
                    "lock file: test above)")
def test_ingest_held_by_another_process_gets_409_on_postgresql(app, client):
    # Another connection (as another worker process would) holds the ingest lock.
    from app.ingest.bulk import _INGEST_LOCK_KEY
    from app.storage.database import hold_lock
    with app.app_context():
        other = sa.create_engine(db.engine.url)
        with other.connect() as conn, conn.begin():  # the lock lasts as long as the transaction
            assert hold_lock(conn, _INGEST_LOCK_KEY)
            response = client.post("/api/v1/ingest", data=zipped(SPEC_CASE),
                                   content_type="application/zip")
        other.dispose()
    assert response.status_code == 409
    assert row_counts(app)["ingest"] == 0


@pytest.mark.skipif(TEST_DATABASE != "sqlite" or sys.platform == "win32",
                    reason="the lock file beside a SQLite file")
def test_waiting_for_another_process_s_ingest_is_bounded(app):
    # An ingest that may wait (the CLI, the start-up load) waits for the other process's
    # lock file no longer than it is told, then gives up holding nothing.
    from app.storage.database import one_process_at_a_time

    with app.app_context():
        engine = db.engine
    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK_FILE,
                           f"{engine.url.database}-ingest.lock"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout.readline() == "held\n"
        began = time.monotonic()
        with one_process_at_a_time(engine, "ingest", wait_seconds=0.5) as alone:
            waited = time.monotonic() - began
        assert alone is False and 0.5 <= waited < 5
    with one_process_at_a_time(engine, "ingest", wait_seconds=0.5) as alone:
        assert alone is True


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///data/store.sqlite3", "data/store.sqlite3"),
    ("sqlite:////srv/store.sqlite3", "/srv/store.sqlite3"),
    ("sqlite:///file:data/store.sqlite3?mode=rwc&uri=true", "data/store.sqlite3"),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", None),
    ("postgresql+psycopg://user@db.example/store", None),
])
def test_the_file_of_a_sqlite_url(url, expected):
    from app.storage.database import sqlite_file

    assert sqlite_file(url) == (None if expected is None else Path(expected))
