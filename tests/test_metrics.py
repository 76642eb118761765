"""/metrics: request and report events, and the service's state read from the database."""

import time
from datetime import datetime, timezone

import pytest
import requests
from conftest import write_csv
from prometheus_client.parser import text_string_to_metric_families
from servers import gunicorn

from app.extensions import db
from app.ingest.load import ingest
from app.storage.models import Report, utcnow


def scrape(get):
    """{(sample name, sorted labels): value} of one /metrics answer."""
    response = get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.text if hasattr(response, "text") else response.get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_and_status(client):
    before = scrape(client.get)
    for _ in range(3):
        client.get("/healthz")
    client.get("/get_report?report_id=nope")
    client.get("/no/such/page")
    after = scrape(client.get)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    requests_total = "store_monitor_http_requests_total"
    assert grew(requests_total, route="/healthz", method="GET", status="200") == 3
    assert grew(requests_total, route="/get_report", method="GET", status="400") == 1
    assert grew(requests_total, route="unmatched", method="GET", status="404") == 1
    latency = "store_monitor_http_request_duration_seconds"
    assert grew(latency + "_count", route="/healthz", method="GET") == 3
    assert grew(latency + "_bucket", route="/healthz", method="GET", le="+Inf") == 3


def test_state_of_reports_data_and_readiness(app, client, tmp_path):
    # Status: s1 twice at the same instant (one duplicate), s2 once, one unreadable time.
    data = write_csv(tmp_path / "data", "store_status.csv", """
        store_id,timestamp_utc,status
        s1,2023-01-25 18:00:00 UTC,active
        s1,2023-01-25 18:00:00 UTC,inactive
        s2,2023-01-25 19:30:00 UTC,inactive
        s2,yesterday,active
    """)
    write_csv(data, "business_hours.csv", """
        store_id,dayOfWeek,start_time_local,end_time_local
        s1,0,09:00:00,17:00:00
    """)
    write_csv(data, "store_timezone.csv", """
        store_id,timezone_str
        s1,America/New_York
    """)
    now = utcnow()
    with app.app_context():
        ingest(data)
        # One report queued, one being computed, two done, one failed.
        db.session.add_all([
            Report(id="q", status=Report.QUEUED),
            Report(id="r", status=Report.RUNNING, worker="elsewhere:1:x", heartbeat_at=now),
            Report(id="c1", status=Report.COMPLETE), Report(id="c2", status=Report.COMPLETE),
            Report(id="e", status=Report.ERROR)])
        db.session.commit()
    app.extensions["report_runner"].last_beat = time.monotonic()  # as if started

    samples = scrape(client.get)
    assert value(samples, "store_monitor_ready") == 1
    assert value(samples, "store_monitor_database_up") == 1
    assert {state: value(samples, "store_monitor_reports", state=state)
            for state in ("queued", "running", "complete", "error")} == \
        {"queued": 1, "running": 1, "complete": 2, "error": 1}
    assert value(samples, "store_monitor_report_queue_depth") == 1
    rows = {(kind, outcome): value(samples, "store_monitor_ingest_rows_total", kind=kind,
                                   outcome=outcome)
            for kind in ("status", "hours", "timezone")
            for outcome in ("loaded", "duplicate", "rejected")}
    assert rows == {("status", "loaded"): 2, ("status", "duplicate"): 1,
                    ("status", "rejected"): 1, ("hours", "loaded"): 1,
                    ("hours", "duplicate"): 0, ("hours", "rejected"): 0,
                    ("timezone", "loaded"): 1, ("timezone", "duplicate"): 0,
                    ("timezone", "rejected"): 0}
    latest = datetime(2023, 1, 25, 19, 30, tzinfo=timezone.utc).timestamp()
    assert value(samples, "store_monitor_latest_poll_timestamp_seconds") == latest
    age = value(samples, "store_monitor_latest_poll_age_seconds")
    assert abs(age - (time.time() - latest)) < 60


def test_finished_reports_are_counted_with_their_duration(client, reports, tmp_path, app):
    with app.app_context():
        ingest(write_csv(tmp_path / "data", "store_status.csv", """
            store_id,timestamp_utc,status
            s1,2023-01-25 18:00:00 UTC,active
        """))
    before = scrape(client.get)
    assert reports.wait(reports.trigger()).headers["X-Report-Status"] == "Complete"
    after = scrape(client.get)
    finished = "store_monitor_reports_finished_total"
    assert value(after, finished, outcome="complete") - \
        value(before, finished, outcome="complete") == 1
    duration = "store_monitor_report_duration_seconds_count"
    assert value(after, duration, outcome="complete") - \
        value(before, duration, outcome="complete") == 1


@pytest.mark.e2e
def test_gunicorn_workers_share_their_counts(server_factory, database_url, tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    server = server_factory(gunicorn(2), DATABASE_URL=database_url, STORE_DATA="",
                            PROMETHEUS_MULTIPROC_DIR=str(folder)).start()

    def counting_workers():
        return {path.stem.rsplit("_", 1)[1] for path in folder.glob("counter_*.db")}

    # A new connection each time: gunicorn spreads them over its workers. Each worker keeps
    # its own file of counts (named by its pid); go on until both have one.
    sent = 0
    while sent < 40 or (len(counting_workers()) < 2 and sent < 1000):
        assert requests.get(f"{server.url}/healthz", headers={"Connection": "close"},
                            timeout=5).status_code == 200
        sent += 1
    assert len(counting_workers()) == 2
    # Any worker's /metrics adds up the counts of all.
    for _ in range(6):
        samples = scrape(lambda path: requests.get(f"{server.url}{path}",
                                                   headers={"Connection": "close"}, timeout=10))
        assert value(samples, "store_monitor_http_requests_total", route="/healthz",
                     method="GET", status="200") == sent


@pytest.mark.e2e
def test_run_py_processes_share_their_counts(server_factory, database_url, tmp_path):
    # No PROMETHEUS_MULTIPROC_DIR: run.py makes a temporary folder for its processes' counts
    # (under TMPDIR) and removes it when it stops.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="", SERVER_PROCESSES="2",
                            TMPDIR=str(temporary)).start()
    # New connections: the kernel spreads them over both processes (all 40 reaching one has
    # a chance of 2 ** -39), so a process counting only its own could not answer 40.
    for _ in range(40):
        assert requests.get(f"{server.url}/healthz", headers={"Connection": "close"},
                            timeout=5).status_code == 200
    for _ in range(6):
        samples = scrape(lambda path: requests.get(f"{server.url}{path}",
                                                   headers={"Connection": "close"}, timeout=10))
        assert value(samples, "store_monitor_http_requests_total", route="/healthz",
                     method="GET", status="200") == 40
    assert [path.name for path in temporary.iterdir()] != []  # the counts' folder
    server.stop(30)
    assert list(temporary.iterdir()) == []
