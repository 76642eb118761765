"""Real server processes for end-to-end tests: `run.py` or gunicorn, on a free port."""

import os
import random
import socket
import subprocess
import sys
import time

import pytest
import requests

from conftest import PROJECT_DIR, poll_until_done

RUN_PY = [sys.executable, "run.py"]


def gunicorn(workers):
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "4",
            "--graceful-timeout", "5", "wsgi:app"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process on a free port; its log is kept under tmp_path."""

    def __init__(self, tmp_path, command=RUN_PY, **env):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1",
                    "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{self.port}", **env}
        self.command = command
        self.process = None

    def start(self, timeout=60):
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=PROJECT_DIR, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # not listening, or booting
                time.sleep(0.1)
        raise AssertionError(f"server not answering after {timeout} s:\n{self.log()}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_report(self, report_id, timeout=60, fresh_connections=False):
        """Poll until done; with `fresh_connections`, each poll may reach another worker.

        A poll whose connection breaks is tried again until `timeout`: one that reached a
        gunicorn worker as it was killed is reset, as any client's would be.
        """
        headers = {"Connection": "close"} if fresh_connections else {}

        def fetch():
            try:
                return requests.get(f"{self.url}/get_report", params={"report_id": report_id},
                                    headers=headers, timeout=10)
            except requests.ConnectionError:
                return None

        return poll_until_done(fetch, timeout, pause=lambda: random.uniform(0.02, 0.1))


@pytest.fixture
def server_factory(tmp_path, database_url):
    # Asking for `database_url` (unused here) makes its fixture start first and end last:
    # servers stop before the test's schema is dropped, which their open connections would
    # otherwise race (a deadlock on PostgreSQL).
    servers = []

    def make(command=RUN_PY, **env):
        server = Server(tmp_path, command, **env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


