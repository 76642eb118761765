"""The real thing: `python run.py` in its own process, spoken to over HTTP."""

import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from conftest import PROJECT_DIR

pytestmark = pytest.mark.e2e


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`run.py` on a free port with its own database; its log is kept under tmp_path."""

    def __init__(self, tmp_path, **env):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **env}
        self.process = None

    def start(self, timeout=60):
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "run.py"], cwd=PROJECT_DIR,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"server not answering after {timeout} s:\n{self.log()}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_report(self, report_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = requests.get(f"{self.url}/get_report", params={"report_id": report_id},
                                    timeout=5)
            if response.headers.get("X-Report-Status") != "Running":
                return response
            time.sleep(0.1)
        raise AssertionError(f"report {report_id} still Running after {timeout} s")


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(**env):
        server = Server(tmp_path, **env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_served_report_of_the_bundled_data(server_factory, tmp_path):
    database = tmp_path / "e2e.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}", "LOG_TO_STDOUT": "1"}
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
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM ingest").fetchone() == (1,)
    assert again.wait_for_report(report_id).text == done.text


def test_polls_stay_fast_while_a_big_report_runs(server_factory, tmp_path):
    # 14,000 stores x 8 days (about 2.5 million polls): the report takes seconds.
    data = tmp_path / "big"
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "generate-data", str(data),
                    "--stores", "14000", "--days", "8", "--seed", "3"],
                   cwd=PROJECT_DIR, check=True, capture_output=True)
    server = server_factory(DATABASE_URL=f"sqlite:///{tmp_path / 'big.sqlite3'}",
                            STORE_DATA=str(data)).start(timeout=180)
    unknown = f"{server.url}/get_report?report_id=00000000-0000-4000-8000-000000000000"

    with requests.Session() as http:
        big = http.post(f"{server.url}/trigger_report", timeout=5).json()["report_id"]
        latencies, running = [], 0
        while True:
            began = time.perf_counter()
            assert http.get(unknown, timeout=5).status_code == 404
            latencies.append(time.perf_counter() - began)
            status = http.get(f"{server.url}/get_report", params={"report_id": big},
                              timeout=5).headers["X-Report-Status"]
            if status != "Running":
                break
            running += 1
            time.sleep(0.01)
    assert status == "Complete"
    # The engine was busy for many of these polls, and none of them waited for it.
    assert running >= 10, f"the report finished too fast to show anything ({running} polls)"
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.05, latencies
    assert latencies[-1] < 0.5, latencies
