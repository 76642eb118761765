"""The server itself against hostile clients (issue 19, points 6 and 10): bodies bounded by
waitress before the app reads them, no open service beyond loopback without a key, and
`/metrics` closed to the world by the documented nginx. Real `run.py` processes."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from conftest import PROJECT_DIR
from servers import free_port, gunicorn, stat_fields

from bench.load import NGINX, start_nginx


def _read_answer(sock, timeout=10):
    """The bytes a server answers on `sock` until it closes (or `timeout`)."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):  # a reset after the answer: keep it
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _status_and_body(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode(), body


def test_a_large_content_length_gets_413_at_once_without_the_body(server_factory):
    server = server_factory(STORE_DATA="", SERVER_PROCESSES="1", MAX_UPLOAD_MB="1").start()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        # 500 MB announced, not one byte of it sent: the answer comes from the headers.
        sock.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/zip\r\nContent-Length: 524288000\r\n\r\n")
        status, head, body = _status_and_body(_read_answer(sock))
    assert status == 413
    assert "application/json" in head
    assert json.loads(body) == {"error": "Request Entity Too Large",
                                "message": "the request body is larger than MAX_UPLOAD_MB"}
    # A body under the limit is the app's to judge (here: not a zip, 400).
    under = requests.post(f"{server.url}/api/v1/ingest", data=b"x" * ((1 << 20) - 10),
                          headers={"Content-Type": "application/zip"}, timeout=30)
    assert under.status_code == 400 and "not a readable zip" in under.json()["message"]


def test_a_trickling_chunked_body_is_cut_at_the_limit(server_factory):
    server = server_factory(STORE_DATA="", SERVER_PROCESSES="1", MAX_UPLOAD_MB="1").start()
    pid = server.process.pid
    before = int(stat_fields(pid)[21])  # resident pages
    sent, answer, answered = 0, [], threading.Event()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:

        def read():  # at once, while the body still trickles in
            try:
                answer.append(_read_answer(sock, timeout=30))
            except OSError:
                answer.append(b"")
            answered.set()

        reader = threading.Thread(target=read)
        reader.start()
        sock.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/zip\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"1000\r\n" + b"z" * 4096 + b"\r\n"
        # Up to 4 MB in 4 KB chunks, a little at a time; the server answers once 1 MB came.
        while sent < 4 * (1 << 20) and not answered.wait(0.001):
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection after its answer
                break
            sent += 4096
        reader.join(30)
    status, _head, _body = _status_and_body(answer[0])
    assert status == 413
    assert sent < 2 * (1 << 20)  # cut at the limit, not after all 4 MB
    grown_kb = (int(stat_fields(pid)[21]) - before) * os.sysconf("SC_PAGE_SIZE") // 1024
    assert grown_kb < 20 * 1024, grown_kb  # nothing like the body stays in memory


def _run_py(host, env, timeout=60):
    return subprocess.run([sys.executable, "run.py"], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "HOST": host, "PORT": str(free_port()),
                               "STORE_DATA": "", "SERVER_PROCESSES": "1", **env})


def test_beyond_loopback_without_a_key_the_server_refuses_to_start(database_url):
    refused = _run_py("0.0.0.0", {"DATABASE_URL": database_url, "ALLOW_OPEN": "0"})
    assert refused.returncode == 1
    lines = [line for line in (refused.stdout + refused.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to serve on 0.0.0.0" in lines[0], lines
    assert "ALLOW_OPEN=1" in lines[0] and "Traceback" not in refused.stderr


def test_beyond_loopback_it_serves_with_a_key_or_allow_open(server_factory, database_url):
    open_server = server_factory(HOST="0.0.0.0", STORE_DATA="", SERVER_PROCESSES="1",
                                 DATABASE_URL=database_url, ALLOW_OPEN="1").start()
    assert requests.get(f"{open_server.url}/api/v1/data", timeout=10).status_code == 200
    open_server.stop()
    created = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys", "create",
                              "ops"], cwd=PROJECT_DIR, capture_output=True, text=True,
                             timeout=120, env={**os.environ, "DATABASE_URL": database_url,
                                               "STORE_DATA": ""})
    assert created.returncode == 0, created.stderr
    keyed = server_factory(HOST="0.0.0.0", STORE_DATA="", SERVER_PROCESSES="1",
                           DATABASE_URL=database_url, ALLOW_OPEN="0").start()
    assert requests.get(f"{keyed.url}/api/v1/data", timeout=10).status_code == 401
    key = created.stdout.strip()
    assert requests.get(f"{keyed.url}/api/v1/data", timeout=10,
                        headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_on_loopback_the_server_stays_open_without_a_key(server_factory, database_url):
    server = server_factory(HOST="127.0.0.1", STORE_DATA="", SERVER_PROCESSES="1",
                            DATABASE_URL=database_url, ALLOW_OPEN="0").start()
    assert requests.get(f"{server.url}/api/v1/data", timeout=10).status_code == 200


def test_a_revoked_key_is_refused_by_another_process_within_seconds(server_factory,
                                                                    database_url):
    env = {"DATABASE_URL": database_url, "STORE_DATA": ""}
    created = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys", "create",
                              "poller"], cwd=PROJECT_DIR, capture_output=True, text=True,
                             timeout=120, env={**os.environ, **env})
    key = created.stdout.strip()
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys", "create", "other"],
                   cwd=PROJECT_DIR, capture_output=True, timeout=120, check=True,
                   env={**os.environ, **env})  # the API stays keyed after the revoke
    server = server_factory(SERVER_PROCESSES="1", **env).start()
    headers = {"Authorization": f"Bearer {key}"}
    assert requests.get(f"{server.url}/api/v1/data", headers=headers, timeout=10).ok
    revoked = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys", "revoke",
                              "poller"], cwd=PROJECT_DIR, capture_output=True, text=True,
                             timeout=120, env={**os.environ, **env})
    assert revoked.returncode == 0, revoked.stderr
    revoked_at = time.monotonic()
    while requests.get(f"{server.url}/api/v1/data", headers=headers,
                       timeout=10).status_code != 403:
        assert time.monotonic() - revoked_at < 10, "the revoked key still works"
        time.sleep(0.1)


requires_nginx = pytest.mark.skipif(
    shutil.which(NGINX) is None and not os.environ.get("STORE_MONITOR_REQUIRE_NGINX"),
    reason="nginx is not installed (CI installs it and requires this test)")


@requires_nginx
def test_the_documented_nginx_answers_metrics_only_to_this_host(server_factory, tmp_path):
    server = server_factory(STORE_DATA="", SERVER_PROCESSES="1").start()
    port = free_port()
    proxy = start_nginx(port, server.port, tmp_path / "nginx")
    try:
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
        # Another address of this machine (127.0.0.2 is loopback too, but not 127.0.0.1).
        with socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0),
                                      timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status, _head, body = _status_and_body(_read_answer(sock))
        assert status == 403 and json.loads(body)["error"] == "Forbidden"
        with socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0),
                                      timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert _status_and_body(_read_answer(sock))[0] == 200
    finally:
        proxy.terminate()
        proxy.wait(10)


def test_gunicorn_beyond_loopback_without_a_key_refuses_to_start(database_url):
    """The documented production server makes the same check as run.py, on its binds."""
    port = free_port()
    refused = subprocess.run(
        [*gunicorn(1), "--bind", f"0.0.0.0:{port}"], cwd=PROJECT_DIR, capture_output=True,
        text=True, timeout=120, env={**os.environ, "DATABASE_URL": database_url,
                                     "STORE_DATA": "", "ALLOW_OPEN": "0",
                                     "GUNICORN_CMD_ARGS": ""})
    assert refused.returncode != 0
    assert "refusing to serve on 0.0.0.0 without an API key" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_run_py_on_loopback_answers_only_to_loopback_host_names(server_factory, database_url):
    """A page on another site that a DNS rebinding points at 127.0.0.1 sends its own name as
    the Host: the default server on loopback refuses it (no key is needed there)."""
    server = server_factory(HOST="127.0.0.1", STORE_DATA="", SERVER_PROCESSES="1",
                            DATABASE_URL=database_url, ALLOW_OPEN="0").start()
    port = server.port
    rebound = requests.post(f"{server.url}/trigger_report", timeout=10, headers={
        "Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"})
    assert rebound.status_code == 400
    assert "not trusted" in rebound.json()["message"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert requests.get(f"{server.url}/api/v1/data", timeout=10,
                            headers={"Host": host}).status_code == 200


def test_behind_a_proxy_the_server_counts_as_facing_the_network(database_url):
    refused = _run_py("127.0.0.1", {"DATABASE_URL": database_url, "ALLOW_OPEN": "0",
                                    "TRUSTED_PROXIES": "1"})
    assert refused.returncode == 1
    assert "refusing to serve on 127.0.0.1 behind a proxy (TRUSTED_PROXIES)" in (
        refused.stdout + refused.stderr)


@requires_nginx
def test_behind_the_documented_nginx_a_client_cannot_choose_the_host_of_links(
        server_factory, database_url, tmp_path):
    """gunicorn behind nginx, as deployed: ProxyFix trusts X-Forwarded-Host from one proxy
    (TRUSTED_PROXIES=1), and deploy/nginx.conf sets it from the request's Host, so a
    client-sent one never reaches the app."""
    server = server_factory(gunicorn(1), STORE_DATA="", DATABASE_URL=database_url,
                            TRUSTED_PROXIES="1", ALLOW_OPEN="1").start()
    port = free_port()
    proxy = start_nginx(port, server.port, tmp_path / "nginx")
    try:
        url = f"http://127.0.0.1:{port}"
        report_id = requests.post(f"{url}/trigger_report", timeout=10).json()["report_id"]
        deadline = time.monotonic() + 30
        while True:
            state = requests.get(f"{url}/get_report", timeout=10, params={
                "report_id": report_id, "format": "json"},
                headers={"X-Forwarded-Host": "evil.example"}).json()
            if state["status"] != "Running" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert state["download_url"].startswith(f"{url}/get_report?"), state
    finally:
        proxy.terminate()
        proxy.wait(10)
