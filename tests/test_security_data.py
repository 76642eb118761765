"""Bad data and hostile input that once broke the service (issue 19, points 1 and 8): one
far-future poll, rows that all have the wrong number of fields, NUL characters, deeply
nested JSON, a shared rate-limit storage that is down. On SQLite and PostgreSQL alike."""

import io
import os
import subprocess
import sys
import zipfile

from conftest import GOLDEN_DIR, PROJECT_DIR, close_app, make_app, write_csv

SPEC_CASE = GOLDEN_DIR / "a_spec_example"
EXPECTED = (SPEC_CASE / "expected.csv").read_text()


def upload(client, text, kind="status"):
    return client.post("/api/v1/ingest", data=text.encode(), content_type="text/csv",
                       query_string={"kind": kind})


def load_spec_example(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in SPEC_CASE.glob("*.csv"):
            if path.name != "expected.csv":
                archive.write(path, path.name)
    answer = client.post("/api/v1/ingest", data=buffer.getvalue(),
                         content_type="application/zip")
    assert answer.status_code == 201, answer.get_json()


def test_a_far_future_poll_is_rejected_and_reports_still_work(client, reports):
    load_spec_example(client)
    answer = upload(client, "store_id,timestamp_utc,status\n"
                            "1001,9999-12-31 23:59:59 UTC,active\n"
                            "1001,2100-01-01T00:00:00Z,inactive\n")
    assert answer.status_code == 201
    body = answer.get_json()
    assert (body["read"], body["loaded"], body["rejected"]) == (2, 0, 2)
    assert [r["line"] for r in body["rejections"]] == [2, 3]
    assert all("later than the server's clock plus MAX_FUTURE_MINUTES (60)" in r["reason"]
               for r in body["rejections"])
    # The latest poll, and so every report, is as before the upload.
    assert client.get("/api/v1/data").get_json()["latest_poll"] == "2023-01-25T18:00:00Z"
    done = reports.wait(reports.trigger())
    assert done.get_data(as_text=True) == EXPECTED
    assert client.get("/stores/1001").status_code == 200


def test_the_tolerance_is_a_setting(app_factory):
    app = app_factory(MAX_FUTURE_MINUTES=0)
    client = app.test_client()
    # Two minutes ahead of the clock: over a tolerance of 0, within the default 60.
    from datetime import datetime, timedelta, timezone
    soon = (datetime.now(timezone.utc) + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S")
    body = upload(client, f"store_id,timestamp_utc,status\n1,{soon},active\n").get_json()
    assert (body["loaded"], body["rejected"]) == (0, 1)
    assert "MAX_FUTURE_MINUTES (0)" in body["rejections"][0]["reason"]


def test_flask_ingest_and_store_data_reject_far_future_polls_too(database_url, tmp_path):
    folder = write_csv(tmp_path / "future", "store_status.csv", """
        store_id,timestamp_utc,status
        1,2023-01-25 18:00:00 UTC,active
        1,2999-01-01 00:00:00 UTC,active
    """)
    env = {**os.environ, "DATABASE_URL": database_url, "STORE_DATA": ""}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "ingest",
                           str(folder)], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rejected store_status.csv:3: timestamp_utc later than the server's clock" \
        in done.stdout
    # STORE_DATA at start goes through the same ingest (app.ops.startup).
    from app.ops.startup import load_store_data
    app = make_app(database_url, STORE_DATA=str(folder))
    try:
        load_store_data(app)
        client = app.test_client()
        assert client.get("/api/v1/data").get_json()["latest_poll"] == "2023-01-25T18:00:00Z"
    finally:
        close_app(app)


def test_flask_data_delete_removes_polls_as_an_ingest(app, client, runner, reports):
    load_spec_example(client)
    first = reports.wait(reports.trigger())
    assert first.get_data(as_text=True) == EXPECTED
    result = runner.invoke(args=["data", "delete", "--store", "9999",
                                 "--from", "2023-01-25T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "1 polls removed" in result.output
    ingests = client.get("/api/v1/ingests").get_json()["ingests"]
    removal = ingests[0]
    assert removal["source"] == "delete polls of stores 9999 from 2023-01-25T00:00:00Z"
    assert removal["files"] == [{"kind": "deleted", "name": "store_status", "read": 1,
                                 "loaded": 1, "duplicate": 0, "rejected": 0}]
    # Store 9999 had its only poll removed: the latest poll is store 1001's, and the new
    # report (not the earlier one reused: the data version changed) has one row.
    assert client.get("/api/v1/data").get_json()["latest_poll"] == "2023-01-23T17:30:00Z"
    second = reports.wait(reports.trigger())
    lines = second.get_data(as_text=True).splitlines()
    assert [line.split(",")[0] for line in lines] == ["store_id", "1001"]
    refused = runner.invoke(args=["data", "delete"])
    assert refused.exit_code != 0 and "removing every poll is not offered" in refused.output


def test_a_status_file_whose_rows_all_have_the_wrong_number_of_fields(client):
    answer = upload(client, "store_id,timestamp_utc,status\n"
                            "1,2023-01-25 18:00:00 UTC,active,extra\n2,only\n")
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert (body["read"], body["loaded"], body["rejected"]) == (2, 0, 2)
    assert [(r["line"], r["reason"]) for r in body["rejections"]] == [
        (2, "expected 3 fields, found 4"), (3, "expected 3 fields, found 2")]


def test_nul_characters_are_rejected_rows_on_every_database(client):
    status = upload(client, "store_id,timestamp_utc,status\n"
                            "a\0b,2023-01-25 18:00:00 UTC,active\n"
                            "c,2023-01-25 18:00:00 UTC,act\0ive\n"
                            "d,2023-01-25 18:00:00 UTC,active\n")
    assert status.status_code == 201, status.get_json()
    body = status.get_json()
    assert (body["loaded"], body["rejected"]) == (1, 2)
    assert [r["reason"] for r in body["rejections"]] == [
        "NUL character in store_id", "unknown status 'act\\0ive'"]
    zones = upload(client, "store_id,timezone_str\nd,America/New\0York\ne\0,UTC\nf,UTC\n",
                   kind="timezone").get_json()
    assert (zones["loaded"], zones["rejected"]) == (1, 2)
    assert [r["reason"] for r in zones["rejections"]] == [
        "NUL character in timezone_str", "NUL character in store_id"]
    hours = upload(client, "store_id,dayOfWeek,start_time_local,end_time_local\n"
                           "x\0,0,09:00,17:00\nd,0,09:00,17\0:00\n", kind="hours").get_json()
    assert (hours["loaded"], hours["rejected"]) == (0, 2)
    assert hours["rejections"][1]["reason"] == "unparseable end_time_local '17\\0:00'"
    # A client-given file name with a NUL is recorded without it.
    named = client.post("/api/v1/ingest", data=b"store_id,timestamp_utc,status\n",
                        content_type="text/csv",
                        query_string={"kind": "status", "filename": "a\0b.csv"})
    assert named.status_code == 201 and named.get_json()["source"] == "upload ab.csv"


def test_a_store_id_with_a_nul_is_404_not_500(client):
    assert client.get("/stores/%00").status_code == 404
    assert client.get("/stores/a%00b").status_code == 404
    answer = client.get("/api/v1/stores/%00/timeline")
    assert answer.status_code == 404 and answer.is_json


def test_deeply_nested_json_is_400(client):
    for body in ("[" * 100_000 + "]" * 100_000,
                 '{"as_of": ' * 50_000 + "1" + "}" * 50_000):
        answer = client.post("/trigger_report", data=body, content_type="application/json")
        assert answer.status_code == 400
        assert answer.get_json() == {"error": "Bad Request",
                                     "message": "the request body is nested too deeply"}


def test_an_unreachable_rate_limit_storage_is_503_and_not_ready(app_factory):
    # Nothing listens on port 1: the storage fails as an unreachable Redis does.
    app = app_factory(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    client = app.test_client()
    answer = client.post("/trigger_report")
    assert answer.status_code == 503 and "Retry-After" in answer.headers
    assert answer.get_json() == {
        "error": "Service Unavailable",
        "message": "the rate limiter's storage is unavailable at the moment; retry later"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["rate_limit_storage"] == "unreachable"


def test_ingests_show_file_names_not_server_paths(app, tmp_path):
    folder = write_csv(tmp_path / "secret-folder" / "feed", "store_status.csv",
                       "store_id,timestamp_utc,status\n1,2023-01-25 18:00:00 UTC,active\n")
    from app.ingest.load import ingest
    with app.app_context():
        ingest(folder)
    listed = app.test_client().get("/api/v1/ingests").get_json()["ingests"]
    assert listed[0]["source"] == "feed"
    assert "secret-folder" not in str(listed)


def test_the_api_removes_polls_with_a_key(app, client):
    load_spec_example(client)
    from app.auth.keys import create_key
    with app.app_context():
        key = create_key("operator")
    keyed = {"Authorization": f"Bearer {key}"}
    assert client.delete("/api/v1/polls?store_id=9999").status_code == 401
    refused = client.delete("/api/v1/polls", headers=keyed)
    assert refused.status_code == 400 and "not offered" in refused.get_json()["message"]
    answer = client.delete("/api/v1/polls", headers=keyed, query_string={
        "store_id": ["1001", "9999"], "from": "2023-01-23T15:00:00Z",
        "to": "2023-01-23T17:00:00Z"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["source"] == ("delete polls of stores 1001, 9999 from 2023-01-23T15:00:00Z "
                              "before 2023-01-23T17:00:00Z")
    # 1001's polls at 15:14 and 16:15 lie in the range; 12:30, 17:30 and 9999's do not.
    assert (body["read"], body["loaded"]) == (2, 2)
    listed = client.get("/api/v1/ingests", headers=keyed).get_json()["ingests"][0]
    assert listed["ingest_id"] == body["ingest_id"]
    assert client.get("/api/v1/data", headers=keyed).get_json()["polls"] == 3


def test_a_poll_within_the_tolerance_is_loaded(client):
    from datetime import datetime, timedelta, timezone
    soon = (datetime.now(timezone.utc) + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S")
    body = upload(client, f"store_id,timestamp_utc,status\n1,{soon},active\n").get_json()
    assert (body["loaded"], body["rejected"]) == (1, 0)


def test_removing_with_a_nul_in_a_store_id_is_the_clients_mistake(client):
    load_spec_example(client)
    for store_id in ("\x00", "a\x00b"):
        answer = client.delete("/api/v1/polls", query_string={"store_id": store_id})
        assert answer.status_code == 400, answer.get_json()
        assert "NUL" in answer.get_json()["message"]
    assert client.get("/api/v1/data").get_json()["polls"] == 5


def test_removing_nothing_keeps_the_data_version(app, client):
    load_spec_example(client)
    from app.storage.models import DataVersion

    def version():
        with app.app_context():
            from app.extensions import db
            return db.session.execute(db.select(DataVersion.version)).scalar()

    before = version()
    ingests = client.get("/api/v1/data").get_json()["ingests"]
    answer = client.delete("/api/v1/polls", query_string={"store_id": "no-such-store"})
    assert answer.status_code == 200 and answer.get_json()["read"] == 0
    assert version() == before  # reports of this data stay reusable, its copy valid
    # The summary of the data, kept per state of the data, still counts the removal.
    assert client.get("/api/v1/data").get_json()["ingests"] == ingests + 1
    removed = client.delete("/api/v1/polls", query_string={"store_id": "1001",
                                                           "from": "2023-01-23T16:00:00Z"})
    assert removed.get_json()["read"] == 2  # 16:15 and 17:30
    assert version() != before
