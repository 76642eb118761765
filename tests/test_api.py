"""The HTTP API through Flask's test client: states, formats and errors."""

import re
import socket
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
from conftest import GOLDEN_DIR, Reports, close_app, make_app

from app.extensions import db
from app.ingest.load import ingest
from app.reports import liveness, pipeline
from app.reports import queue as report_queue
from app.storage.models import Report, utcnow

SPEC_CASE = GOLDEN_DIR / "a_spec_example"


@pytest.fixture
def spec_data(app):
    with app.app_context():
        ingest(SPEC_CASE)


def test_trigger_then_poll_gives_the_csv_as_a_download(client, reports, spec_data):
    response = client.post("/trigger_report")
    assert response.status_code == 202
    report_id = response.get_json()["report_id"]
    assert uuid.UUID(report_id).version == 4
    assert response.headers["Location"].endswith(f"/get_report?report_id={report_id}")

    done = reports.wait(report_id)
    assert done.status_code == 200
    assert done.mimetype == "text/csv"
    assert done.headers["X-Report-Status"] == "Complete"
    assert done.headers["Content-Disposition"] == \
        f'attachment; filename="report-{report_id}.csv"'
    assert done.get_data(as_text=True) == (SPEC_CASE / "expected.csv").read_text()


def test_json_clients_get_status_and_a_download_link(client, reports, spec_data):
    report_id = reports.trigger()
    done = reports.wait(report_id, headers={"Accept": "application/json"})
    body = done.get_json()
    assert body["status"] == "Complete" and body["rows"] == 2 and body["report_id"] == report_id
    download = client.get(body["download_url"], headers={"Accept": "application/json"})
    assert download.mimetype == "text/csv"
    assert download.get_data(as_text=True) == (SPEC_CASE / "expected.csv").read_text()
    # Polls of a finished report reuse its answer, but the link names the host asked.
    for host in ("a.example", "b.example:8080", "a.example"):
        again = client.get(f"/get_report?report_id={report_id}&format=json",
                           headers={"Host": host}).get_json()
        assert again == {**body, "download_url": f"http://{host}/get_report?report_id="
                                                 f"{report_id}&format=csv"}


def test_running_report_answers_running_with_progress(app, client, reports, monkeypatch):
    release = threading.Event()

    compute = pipeline.compute_report

    def slow(progress=None, as_of_us=None):
        release.wait(10)
        return compute(progress, as_of_us=as_of_us)

    monkeypatch.setattr(pipeline, "compute_report", slow)
    report_id = reports.trigger()
    response = client.get(f"/get_report?report_id={report_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "Running" and 0 <= body["progress"] <= 1
    release.set()
    assert reports.wait(report_id).headers["X-Report-Status"] == "Complete"


def test_failed_report_says_why_without_a_traceback(client, reports, monkeypatch):
    def broken(progress=None, as_of_us=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "compute_report", broken)
    body = reports.wait(reports.trigger()).get_json()
    assert body["status"] == "Error"
    assert re.fullmatch(r"an internal error occurred \(reference [0-9a-f]{12}\)", body["error"])


@pytest.mark.parametrize("query, status", [
    ("", 400), ("?report_id=", 400), ("?report_id=not-a-uuid", 400),
    (f"?report_id={uuid.uuid4()}", 404),
])
def test_bad_or_unknown_report_ids(client, query, status):
    response = client.get(f"/get_report{query}")
    assert response.status_code == status
    assert response.is_json and response.get_json()["error"]
    assert "Traceback" not in response.get_data(as_text=True)


ID = "5356f03c-df24-449f-928f-4781140e35e9"


@pytest.mark.parametrize("query, message", [
    ("", "report_id: Missing data for required field."),
    ("format=json", "report_id: Missing data for required field."),
    ("report_id=", "report_id: Not a valid UUID."),
    (f"report_id=%20{ID}", "report_id: Not a valid UUID."),
    (f"report_id={ID}%00", "report_id: Not a valid UUID."),
    (f"report_id=bad&report_id={ID}", "report_id: Not a valid UUID."),  # the first counts
    (f"report_id={ID}&format=xml", "format: Must be one of: csv, json."),
    (f"report_id={ID}&format=", "format: Must be one of: csv, json."),
])
def test_malformed_polls_get_the_schemas_message(client, query, message):
    response = client.get(f"/get_report?{query}")
    assert (response.status_code, response.get_json()) == (
        400, {"error": "Bad Request", "message": message})


@pytest.mark.parametrize("spelling", [
    ID, ID.upper(), ID.replace("-", ""), f"{{{ID}}}", f"urn:uuid:{ID}",
    f"{ID}&report_id=bad", f"{ID}&format=json&format=xml", f"{ID}&other=1",
])
def test_every_spelling_of_an_id_names_the_same_report(client, spelling):
    response = client.get(f"/get_report?report_id={spelling}")
    assert (response.status_code, response.get_json()["message"]) == (
        404, f"no report with id {ID}")


def test_wrong_method_and_unknown_path_answer_json(client):
    wrong = client.get("/trigger_report")
    assert wrong.status_code == 405 and wrong.get_json()["error"] == "Method Not Allowed"
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.is_json


def test_unexpected_error_is_a_json_500(app, client, monkeypatch):
    def explode(*args, **kwargs):
        raise ValueError("secret internals")

    monkeypatch.setattr(report_queue, "start_report", explode)
    response = client.post("/trigger_report")
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert response.get_json()["error"] == "Internal Server Error"


def _running_report(app, worker, heartbeat_age):
    """A report claimed by `worker` whose lease was last renewed `heartbeat_age` ago."""
    with app.app_context():
        report = Report(id=str(uuid.uuid4()), status=Report.RUNNING, worker=worker,
                        heartbeat_at=utcnow() - heartbeat_age)
        db.session.add(report)
        db.session.commit()
        return report.id


def test_report_with_stale_heartbeat_ends_in_error_when_polled(app, client):
    report_id = _running_report(app, "elsewhere:1:abcd", timedelta(hours=1))
    body = client.get(f"/get_report?report_id={report_id}").get_json()
    assert body["status"] == "Error" and "interrupted" in body["error"]


def test_start_up_fails_reports_of_dead_processes_only(app):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead = _running_report(app, f"{socket.gethostname()}:{finished.stdout.strip()}:abcd",
                           timedelta(0))
    alive = _running_report(app, f"{socket.gethostname()}:1:abcd", timedelta(0))
    with app.app_context():
        assert liveness.recover_interrupted() == 1
        assert db.session.get(Report, dead).status == Report.ERROR
        assert db.session.get(Report, alive).status == Report.RUNNING
        # A process that saw the report Running a moment ago, after another failed it, fails
        # nothing (and so logs and counts nothing).
        assert liveness.fail_interrupted([(dead, f"{socket.gethostname()}:"
                                                 f"{finished.stdout.strip()}:abcd")]) == 0


def test_reports_live_in_the_database_not_in_the_process(app, reports, spec_data,
                                                         database_url):
    report_id = reports.trigger()
    reports.wait(report_id)
    other = make_app(database_url)
    response = Reports(other.test_client()).wait(report_id)
    assert response.get_data(as_text=True) == (SPEC_CASE / "expected.csv").read_text()
    close_app(other)


def test_report_as_of_an_instant(client, reports, spec_data):
    # docs/report.md's worked example, seen from Tuesday 2023-01-24 12:00 UTC: store 1001
    # (New York, open Mondays 09:00-12:00 = 14:00-17:00 UTC) was polled in hours at 15:14
    # (active) and 16:15 (inactive), midpoint 15:44:30: up 104.5 min = 1.74 h and down
    # 75.5 min = 1.26 h in the last day and week, nothing in the last hour (Tuesday: closed).
    # Store 9999's only poll (2023-01-25 18:00) comes later, so it has no row.
    triggered = client.post("/trigger_report", json={"as_of": "2023-01-24T12:00:00Z"})
    assert triggered.status_code == 202
    report_id = triggered.get_json()["report_id"]
    done = reports.wait(report_id)
    assert done.get_data(as_text=True).splitlines()[1:] == ["1001,0.00,1.74,1.74,0.00,1.26,1.26"]
    status = client.get(f"/get_report?report_id={report_id}&format=json").get_json()
    assert status["now"] == status["as_of"] == "2023-01-24T12:00:00Z"
    # The same instant as a query argument, written with an offset.
    again = client.post("/trigger_report?as_of=2023-01-24T07:00:00-05:00").get_json()
    assert reports.wait(again["report_id"]).get_data() == done.get_data()


def test_plain_report_says_its_now_is_the_latest_poll(client, reports, spec_data):
    report_id = reports.trigger()
    status = reports.wait(report_id, headers={"Accept": "application/json"}).get_json()
    assert status["now"] == "2023-01-25T18:00:00Z" and status["as_of"] is None


@pytest.mark.parametrize("kwargs, words", [
    (dict(query_string={"as_of": "2023-01-23T12:29:59Z"}), "before the first poll"),
    (dict(query_string={"as_of": "2999-01-01T00:00:00Z"}), "in the future"),
    (dict(query_string={"as_of": "yesterday"}), "as_of"),
    (dict(query_string={"as_of": "2023-01-24T00:00:00Z"},
          json={"as_of": "2023-01-24T01:00:00Z"}), "given twice"),
])
def test_as_of_outside_the_data_is_400(client, spec_data, kwargs, words):
    response = client.post("/trigger_report", **kwargs)
    assert response.status_code == 400 and words in response.get_json()["message"]


def test_as_of_without_data_is_400(client):
    response = client.post("/trigger_report", json={"as_of": "2023-01-24T12:00:00Z"})
    assert response.status_code == 400 and "no polls" in response.get_json()["message"]


def test_one_report_has_one_json_shape_wherever_it_is_read(client, reports, spec_data):
    """The poll, the report list and the report's own page of /api/v1 show the same state."""
    report_id = reports.trigger()
    polled = reports.wait(report_id, headers={"Accept": "application/json"}).get_json()
    listed = client.get("/api/v1/reports").get_json()["reports"][0]
    summary = client.get(f"/api/v1/reports/{report_id}").get_json()
    assert polled == listed == {key: summary[key] for key in polled}
    assert set(polled) == {"report_id", "status", "progress", "error", "rows", "created_at",
                           "finished_at", "seconds", "as_of", "now", "reused_from",
                           "download_url"}
    assert polled["status"] == "Complete" and polled["error"] is None
    assert polled["created_at"].endswith("Z") and polled["finished_at"].endswith("Z")
