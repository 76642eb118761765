"""docs/deployment.md, section 3, run for real (issue 18, point 11): the blocks marked
`<!-- deployment-test: NAME -->` are run in order, as written, on this machine's PostgreSQL
(127.0.0.1:5432, user postgres) and nginx, in a copy of the working tree.

What a test cannot do as written is done the nearest way, and only that: no `sudo` (the
user `store-monitor` is the test's own user; `sudo -u postgres psql` connects as postgres
over TCP), a role and database named for this run instead of `store_monitor`, free ports
instead of 8000 and 8080, systemd's `ExecStart` lines run as child processes (nginx in the
foreground), the checkout's folder instead of /srv/store-monitor, and, when no Redis
answers on 127.0.0.1:6379, the rate-limit counters in memory.

Skipped when PostgreSQL or nginx is missing, except under CI (CI=true), which has both.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from conftest import PROJECT_DIR
from servers import free_port

pytestmark = pytest.mark.e2e

DOC = PROJECT_DIR / "docs" / "deployment.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PSQL = shutil.which("psql")
BLOCK = re.compile(r"<!-- deployment-test: (\w+) -->\n```sh\n(.*?)```", re.S)


def answers(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def missing():
    """Why the deployment cannot run here, or None."""
    if not os.path.exists(NGINX):
        return "nginx is not installed"
    if PSQL is None or not answers(5432):
        return "no PostgreSQL server on 127.0.0.1:5432 (or no psql)"
    return None


@pytest.fixture
def checkout(tmp_path):
    """The working tree's tracked files in a folder of their own, with the project's
    virtual environment: what `git clone` and `pip install` of step 1 leave."""
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path / "store-monitor"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = PROJECT_DIR / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    # The environment this test runs in (sys.prefix: the virtual environment's folder, not
    # the interpreter it links to), wherever it lives: in CI's stand-alone run it belongs
    # to another clone.
    (folder / ".venv").symlink_to(Path(sys.prefix).resolve())
    return folder


def blocks():
    found = dict(BLOCK.findall(DOC.read_text()))
    assert list(found) == ["database", "migrate", "gunicorn", "nginx", "report"], list(found)
    return found


def as_here(text, name, folder):
    """A block as this test can run it (see the module's docstring)."""
    text = (text.replace("sudo -u postgres psql", "psql -h 127.0.0.1 -U postgres")
            .replace("sudo -u postgres createdb", "createdb -h 127.0.0.1 -U postgres")
            .replace("sudo -u store-monitor ", "").replace("sudo ", "")
            .replace("store_monitor", name).replace("/srv/store-monitor", str(folder)))
    if not answers(6379):
        text = text.replace("redis://127.0.0.1:6379", "memory://")
    return text


def bash(script, folder, **env):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "STORE_DATA", "LOG_LEVEL", "SECRET_KEY")}
    environment["PATH"] = f"{folder / '.venv' / 'bin'}:{environment['PATH']}"
    environment.update(env)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=folder,
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (script, result.stdout, result.stderr)
    return result


def unit_lines(block, key):
    """The values of `key=` lines in the systemd text of a block (its heredoc)."""
    return [line.split("=", 1)[1] for line in block.splitlines()
            if line.startswith(f"{key}=") and line.split("=", 1)[1]]


def wait_until_ready(url, process, log, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: exited\n{log.read_text()}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {seconds} s\n{log.read_text()}")


def finished_reports(url):
    text = requests.get(f"{url}/metrics", timeout=10).text
    found = re.search(r'^store_monitor_reports_finished_total\{outcome="complete"\} (\S+)$',
                      text, re.M)
    return float(found.group(1)) if found else 0.0


def test_the_documented_deployment_runs_as_written(checkout, tmp_path):
    steps = blocks()
    name = f"sm_deploy_{uuid.uuid4().hex[:10]}"
    processes = []
    try:
        # The database, its role and .env.
        bash(as_here(steps["database"], name, checkout), checkout)
        settings = (checkout / ".env").read_text()
        assert f"DATABASE_URL=postgresql+psycopg://{name}:" in settings
        assert oct((checkout / ".env").stat().st_mode)[-3:] == "600"

        # Migrations (printed), the first key, the data.
        done = bash(as_here(steps["migrate"], name, checkout), checkout)
        assert "Running upgrade  -> 63c117ff542e, initial schema" in done.stderr
        assert re.search(rf"/{name}: schema at revision \w+", done.stderr)
        key = re.search(r"^smk_\S+$", done.stdout, re.M).group(0)
        assert re.search(r"^ingest 1 of data/store-monitoring-data\.zip in \d+\.\d\d s$",
                         done.stdout, re.M)

        # gunicorn as the drop-in starts it, on a free port instead of 8000.
        gunicorn_port, nginx_port = free_port(), free_port()
        (exec_start,) = unit_lines(steps["gunicorn"], "ExecStart")
        environment = dict(line.split("=", 1) for line in
                           unit_lines(steps["gunicorn"], "Environment"))
        assert "--bind 127.0.0.1:8000" in exec_start
        metrics = tmp_path / "metrics"
        metrics.mkdir()
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)  # /run/store-monitor
        command = as_here(exec_start, name, checkout).replace(
            "127.0.0.1:8000", f"127.0.0.1:{gunicorn_port}").split()
        gunicorn_log = tmp_path / "gunicorn.log"
        with open(gunicorn_log, "wb") as log:
            gunicorn = subprocess.Popen(command, cwd=checkout, stdout=log, stderr=log,
                                        env={**os.environ, **environment,
                                             "PATH": os.environ["PATH"]})
        processes.append(gunicorn)
        gunicorn_url = f"http://127.0.0.1:{gunicorn_port}"
        wait_until_ready(gunicorn_url, gunicorn, gunicorn_log)

        # nginx as its unit starts it, with deploy/nginx.conf on the two free ports.
        (nginx_start,) = unit_lines(steps["nginx"], "ExecStart")
        conf = checkout / "deploy" / "nginx.conf"
        text = conf.read_text()
        for old, new in (("listen 127.0.0.1:8080", f"listen 127.0.0.1:{nginx_port}"),
                         ("server 127.0.0.1:8000;", f"server 127.0.0.1:{gunicorn_port};")):
            assert old in text, old
            text = text.replace(old, new)
        conf.write_text(text)
        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        command = as_here(nginx_start, name, checkout).replace(
            "/var/lib/store-monitor-nginx", str(prefix)).split()
        assert command[0].endswith("nginx") and command[-1] == str(conf)
        command[0] = NGINX
        # In the foreground, as the test's child (as root, workers as root: the temporary
        # folder is private).
        main = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        nginx_log = prefix / "logs" / "stderr.log"
        with open(nginx_log, "wb") as log:
            nginx = subprocess.Popen([*command, "-g", main], stdout=log, stderr=log)
        processes.append(nginx)
        nginx_url = f"http://127.0.0.1:{nginx_port}"
        wait_until_ready(nginx_url, nginx, nginx_log)

        # A report through nginx, with the key, as the page shows it.
        report = as_here(steps["report"], name, checkout).replace(
            "KEY=smk_...", f"KEY={key}").replace("127.0.0.1:8080", f"127.0.0.1:{nginx_port}")
        shown = bash(report, checkout).stdout
        assert shown.startswith("store_id,uptime_last_hour,uptime_last_day,uptime_last_week,")
        assert len(shown.splitlines()) == 3
        refused = requests.post(f"{nginx_url}/trigger_report", timeout=10)
        assert refused.status_code == 401  # a key exists: the API wants it

        # A second report of the same data reuses the first, and is counted as finished.
        before = finished_reports(gunicorn_url)
        assert before >= 1
        again = requests.post(f"{nginx_url}/trigger_report", timeout=10,
                              headers={"Authorization": f"Bearer {key}"}).json()["report_id"]
        deadline = time.monotonic() + 60
        while True:
            state = requests.get(f"{nginx_url}/get_report", timeout=10,
                                 params={"report_id": again, "format": "json"},
                                 headers={"Authorization": f"Bearer {key}"}).json()
            if state["status"] != "Running" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert state["status"] == "Complete" and state["reused_from"] is not None
        # Links start with PUBLIC_URL from .env, never with the Host a request claims.
        assert state["download_url"].startswith("https://store-monitor.example.com/get_report?")
        assert finished_reports(gunicorn_url) == before + 1

        # gunicorn down: nginx answers 503 in the API's JSON shape, with Retry-After.
        gunicorn.terminate()
        gunicorn.wait(30)
        down = requests.get(f"{nginx_url}/api/v1/reports", timeout=10)
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        assert down.json() == {"error": "Service Unavailable",
                               "message": "the service is not answering; try again shortly"}
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                process.wait(30)
        subprocess.run([PSQL, "-h", "127.0.0.1", "-U", "postgres", "-c",
                        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)
        subprocess.run([PSQL, "-h", "127.0.0.1", "-U", "postgres", "-c",
                        f"DROP ROLE IF EXISTS {name}"], capture_output=True, timeout=60)


def test_the_systemd_unit_runs_what_the_page_says():
    unit = (PROJECT_DIR / "deploy" / "store-monitor.service").read_text()
    assert "WorkingDirectory=/srv/store-monitor" in unit
    assert "ExecStart=/srv/store-monitor/.venv/bin/python run.py" in unit
    assert "User=store-monitor" in unit and "KillMode=mixed" in unit
    page = DOC.read_text()
    assert "sudo cp deploy/store-monitor.service /etc/systemd/system/" in page
    assert "--8<-- \"deploy/store-monitor.service\"" in page
    verify = shutil.which("systemd-analyze")
    if verify:  # its own checks of the unit's syntax (it may warn about the missing user)
        result = subprocess.run([verify, "verify", str(PROJECT_DIR / "deploy" /
                                                       "store-monitor.service")],
                                capture_output=True, text=True, timeout=60)
        assert "Unknown key" not in result.stderr and "Invalid" not in result.stderr, \
            result.stderr
