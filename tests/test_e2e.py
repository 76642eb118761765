"""The real thing: `python run.py` in its own process, spoken to over HTTP."""

import threading
import time

import pytest
import requests
import sqlalchemy as sa
from conftest import BUNDLED_DATA, PROJECT_DIR

pytestmark = pytest.mark.e2e


def test_served_report_of_the_bundled_data(server_factory, database_url):
    # With DATABASE_URL set, the bundled demo is loaded only when STORE_DATA names it.
    env = {"DATABASE_URL": database_url, "STORE_DATA": str(BUNDLED_DATA),
           "LOG_TO_STDOUT": "1"}
    server = server_factory(**env).start()

    triggered = requests.post(f"{server.url}/trigger_report", timeout=5)
    assert triggered.status_code == 202
    report_id = triggered.json()["report_id"]
    done = server.wait_for_report(report_id)
    assert done.status_code == 200
    assert done.headers["Content-Type"].startswith("text/csv")
    assert done.headers["Content-Disposition"] == f'attachment; filename="report-{report_id}.csv"'
    assert done.text == (PROJECT_DIR / "sample_output.csv").read_text()
    assert requests.get(f"{server.url}/get_report", params={"report_id": "x"},
                        timeout=5).status_code == 400
    server.stop()

    # A second start with the same data does not load it again, and still serves the report.
    again = server_factory(**env).start()
    assert "already loaded" in again.log()
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ingest").scalar() == 1
    engine.dispose()
    assert again.wait_for_report(report_id).text == done.text


def test_polls_stay_fast_while_a_big_report_runs(server_factory, database_url,
                                                 big_store_data):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA=str(big_store_data)).start(
        timeout=180)
    unknown = f"{server.url}/get_report?report_id=00000000-0000-4000-8000-000000000000"

    # Six reports of 2.5 M polls (five as of earlier instants, which are never reused) keep
    # the engine busy for a second or more, so that many polls meet it at work. They are
    # triggered on a thread of their own while the polls go on.
    as_of = [None, *(f"2023-01-{day}T12:00:00Z" for day in (25, 24, 23, 22, 21))]
    ids = []

    def trigger_all():
        with requests.Session() as http:
            for when in as_of:
                ids.append(http.post(f"{server.url}/trigger_report", timeout=10,
                                     json={"as_of": when} if when else None
                                     ).json()["report_id"])

    triggering = threading.Thread(target=trigger_all)
    triggering.start()
    with requests.Session() as http:
        latencies, running, states = [], 0, {}
        while triggering.is_alive() or len(states) < len(ids) or "Running" in states.values():
            began = time.perf_counter()
            assert http.get(unknown, timeout=5).status_code == 404
            latencies.append(time.perf_counter() - began)
            waiting = [i for i in list(ids) if states.get(i, "Running") == "Running"]
            states.update({i: http.get(f"{server.url}/get_report", params={"report_id": i},
                                       timeout=5).headers["X-Report-Status"] for i in waiting})
            running += "Running" in states.values()
    triggering.join()
    assert len(states) == len(as_of)
    assert set(states.values()) == {"Complete"}
    # The engine was busy for many of these polls, and none of them waited for it.
    assert running >= 10, f"the reports finished too fast to show anything ({running} polls)"
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.05, latencies
    assert latencies[-1] < 0.5, latencies
