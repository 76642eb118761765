"""Real server processes, for end-to-end tests and the benchmarks: `run.py` or gunicorn on a
free port, and polling a report until it is done.

Plain helpers, free of pytest and of the test configuration, so that `bench/` can use them
too (`from tests.servers import Server`); the tests' `server_factory` fixture is in conftest.
"""

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
RUN_PY = [sys.executable, "run.py"]


def gunicorn(workers):
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "4",
            "--graceful-timeout", "5", "wsgi:app"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stat_fields(pid):
    """The fields of `/proc/<pid>/stat` after the command (state, parent pid, ..., so that
    user and system CPU ticks are fields 11 and 12); None once the process has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def child_pids(pid):
    """Pids of the live (not zombie) processes whose parent is `pid`, from /proc (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(stat.parent.name)
        if fields is not None and fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def is_running(pid):
    """True while `pid` is a live process (not a zombie waiting for its parent)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def poll_until_done(fetch, timeout, pause=lambda: 0.05):
    """Call `fetch` (a poll of one report) until the answer is no longer Running.

    `fetch` returns None for a poll that got no answer; the next poll tries again.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = fetch()
        if response is not None and response.headers.get("X-Report-Status") != "Running":
            return response
        time.sleep(pause())
    raise AssertionError(f"report still Running (or unanswered) after {timeout} s")


class Server:
    """A server process on a free port; its log is kept in `log_dir`."""

    def __init__(self, log_dir, command=RUN_PY, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir) / f"server-{self.port}.log"
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

    def stop(self, timeout=10):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_report(self, report_id, timeout=60, fresh_connections=False, http=requests,
                        pause=lambda: random.uniform(0.02, 0.1)):
        """Poll until done; with `fresh_connections`, each poll may reach another worker.

        `http` may be a `requests.Session`, to poll on one kept-alive connection as most
        clients would. A poll whose connection breaks is tried again until `timeout`: one
        that reached a gunicorn worker as it was killed is reset, as any client's would be.
        """
        headers = {"Connection": "close"} if fresh_connections else {}

        def fetch():
            try:
                return http.get(f"{self.url}/get_report", params={"report_id": report_id},
                                headers=headers, timeout=10)
            except requests.ConnectionError:
                return None

        return poll_until_done(fetch, timeout, pause)
