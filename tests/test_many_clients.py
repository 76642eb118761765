"""Many and slow clients against the real servers: nobody waits for someone else's socket.

Functional checks only (the figures come from `python -m bench.load`): every connection is
answered, and idle sockets or clients that send their headers a byte at a time do not
keep a normal poll from being answered, with `run.py` in one process and in several; the
several are stopped together, and one that dies is replaced while the others serve.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from servers import PROJECT_DIR, child_pids, free_port, gunicorn, is_running

from bench.load import NGINX, run_load, start_nginx

pytestmark = pytest.mark.e2e
# CI installs nginx and sets STORE_MONITOR_REQUIRE_NGINX, so there these tests always run.
requires_nginx = pytest.mark.skipif(
    not os.path.exists(NGINX) and not os.environ.get("STORE_MONITOR_REQUIRE_NGINX"),
    reason="nginx is not installed (CI installs it and requires these tests)")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads processes from /proc")
# run.py in one process, and in two sharing the port (SO_REUSEPORT).
PROCESSES = pytest.mark.parametrize("processes", ["1", "2"])


def _nuisances(port, idle, slow):
    """Open `idle` silent sockets and `slow` clients stuck in the middle of their headers."""
    sockets = []
    for _ in range(idle):
        sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    for _ in range(slow):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        sockets.append(sock)
    return sockets


def _timed_health(url):
    began = time.monotonic()
    response = requests.get(f"{url}/health", timeout=30)
    return response, time.monotonic() - began


@PROCESSES
def test_idle_and_slow_header_sockets_do_not_block_a_poll(server_factory, database_url,
                                                          processes):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="", SERVER_THREADS="4",
                            SERVER_PROCESSES=processes).start()
    # 300 idle and 100 slow sockets: three times waitress's old limit of 100 connections,
    # and 25 times the request threads.
    held = _nuisances(server.port, idle=300, slow=100)
    try:
        response, seconds = _timed_health(server.url)
        assert response.status_code == 200
        assert seconds < 5, f"a poll waited {seconds:.1f} s behind idle sockets"
        # Still so after some more seconds of the slow clients trickling bytes.
        for sock in held[300:]:
            sock.sendall(b"b")
        response, seconds = _timed_health(server.url)
        assert response.status_code == 200 and seconds < 5
    finally:
        for sock in held:
            sock.close()


@PROCESSES
def test_a_thousand_polling_connections_are_all_served(server_factory, database_url,
                                                       processes):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="",
                            SERVER_PROCESSES=processes).start()
    result = asyncio.run(run_load(server.url, "/health", connections=1000, seconds=5,
                                  timeout=60))
    # Every connection got at least one answer, and none failed.
    assert result["served"] == 1000, result
    assert result["errors"] == 0, result


def test_silent_connections_are_closed_after_the_idle_timeout(server_factory, database_url):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="",
                            SERVER_IDLE_TIMEOUT="2").start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    began = time.monotonic()
    assert sock.recv(1) == b""  # the server closed it
    assert time.monotonic() - began < 15
    sock.close()


def test_oversized_headers_are_refused_by_the_server_itself(server_factory, database_url):
    # Documented in the README: waitress answers 431 itself, in plain text, before the app.
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="").start()
    response = requests.get(f"{server.url}/health", headers={"X-Big": "a" * 20_000}, timeout=10)
    assert response.status_code == 431
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def _serving_processes(server, count, timeout=60):
    """The pids of run.py's `count` serving processes, once that many are running."""
    deadline = time.monotonic() + timeout
    while len(pids := child_pids(server.process.pid)) != count:
        assert time.monotonic() < deadline, f"serving processes: {pids}\n{server.log()}"
        time.sleep(0.1)
    return pids


def _health_on_fresh_connections(url, count):
    """`count` polls, each on a new connection (the kernel spreads them over the processes)."""
    return [requests.get(f"{url}/health", headers={"Connection": "close"}, timeout=30)
            .status_code for _ in range(count)]


@linux_only
def test_sigterm_stops_every_serving_process(server_factory, database_url):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="",
                            SERVER_PROCESSES="3").start()
    children = _serving_processes(server, 3)
    assert _health_on_fresh_connections(server.url, 20) == [200] * 20
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    assert [pid for pid in children if is_running(pid)] == []  # no orphan left serving
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/health", timeout=5)


@linux_only
@PROCESSES
def test_a_port_in_use_is_refused_not_shared(server_factory, database_url, processes):
    # SO_REUSEPORT would let a second server join a port another one listens on, and
    # share its clients; run.py checks first and stops with a one-line reason.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as another run.py's
        other.bind(("127.0.0.1", 0))
        other.listen()
        server = server_factory(DATABASE_URL=database_url, STORE_DATA="",
                                SERVER_PROCESSES=processes, PORT=str(other.getsockname()[1]))
        done = subprocess.run(server.command, cwd=PROJECT_DIR, env=server.env, timeout=120,
                              capture_output=True, text=True)
    assert done.returncode == 1
    assert "another server listens there" in done.stderr
    assert "Traceback" not in done.stderr


@linux_only
def test_serving_processes_end_when_the_parent_is_killed(server_factory, database_url):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="",
                            SERVER_PROCESSES="2").start()
    children = _serving_processes(server, 2)
    server.process.kill()  # SIGKILL: the parent cannot stop them itself
    server.process.wait(10)
    deadline = time.monotonic() + 20
    while any(is_running(pid) for pid in children):
        assert time.monotonic() < deadline, "orphaned serving processes kept running"
        time.sleep(0.1)


@linux_only
def test_a_killed_serving_process_is_replaced_and_nobody_is_refused(server_factory,
                                                                     database_url):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="",
                            SERVER_PROCESSES="2").start()
    killed, survivor = _serving_processes(server, 2)
    os.kill(killed, signal.SIGKILL)
    # Connections the kernel gives the dead process's socket wait in its queue (the parent
    # keeps the socket open) until the replacement takes them: all are answered.
    assert _health_on_fresh_connections(server.url, 40) == [200] * 40
    deadline = time.monotonic() + 60
    while len(replaced := child_pids(server.process.pid)) != 2 or killed in replaced:
        assert time.monotonic() < deadline, f"not replaced: {replaced}\n{server.log()}"
        time.sleep(0.1)
    assert survivor in replaced and server.process.poll() is None
    assert f"serving process {killed} was killed by SIGKILL" in server.log()
    assert _health_on_fresh_connections(server.url, 20) == [200] * 20


@pytest.fixture
def proxied_gunicorn(server_factory, database_url, tmp_path):
    """The documented deployment: gunicorn behind nginx with deploy/nginx.conf."""
    server = server_factory(gunicorn(2), DATABASE_URL=database_url, STORE_DATA="").start()
    proxy_port = free_port()
    proxy = start_nginx(proxy_port, server.port, tmp_path / "nginx")
    yield server, f"http://127.0.0.1:{proxy_port}", proxy_port
    proxy.terminate()
    proxy.wait(10)
    # Stop gunicorn before the database fixture drops its schema: its workers' open
    # connections would otherwise race the DROP SCHEMA (a deadlock on PostgreSQL).
    server.stop()


@requires_nginx
def test_behind_nginx_slow_clients_do_not_starve_gunicorn(proxied_gunicorn):
    # Without the proxy, 2 workers x 4 threads are all taken by 8 slow-header clients.
    server, url, port = proxied_gunicorn
    held = _nuisances(port, idle=200, slow=100)
    try:
        response, seconds = _timed_health(url)
        assert response.status_code == 200 and seconds < 5, seconds
        report = requests.post(f"{url}/trigger_report", timeout=30)
        assert report.status_code == 202
    finally:
        for sock in held:
            sock.close()


@requires_nginx
def test_behind_nginx_a_thousand_polling_connections_are_all_served(proxied_gunicorn):
    _server, url, _port = proxied_gunicorn
    result = asyncio.run(run_load(url, "/health", connections=1000, seconds=5, timeout=60))
    assert result["served"] == 1000 and result["errors"] == 0, result


@requires_nginx
def test_nginx_own_refusals_are_json(proxied_gunicorn):
    _server, url, _port = proxied_gunicorn
    too_long = requests.get(f"{url}/health?x={'a' * 20_000}", timeout=10)
    assert too_long.status_code == 414 and too_long.json()["error"] == "Request-URI Too Long"
    big_header = requests.get(f"{url}/health", headers={"X-Big": "a" * 20_000}, timeout=10)
    assert big_header.status_code == 400 and big_header.json()["error"] == "Bad Request"
    # The app's own errors pass through unchanged.
    assert requests.get(f"{url}/get_report?report_id=x", timeout=10).json()["error"] == \
        "Bad Request"


def test_run_py_accepts_every_pending_connection_at_once():
    """Waitress alone accepts one connection per turn of its loop (1,000 clients arriving
    together waited seconds); run.py's server takes all that are pending in one turn."""
    from waitress import create_server

    import run

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    server = create_server(app, host="127.0.0.1", port=0, threads=1, _start=True)
    clients = []
    try:
        run._accept_all_pending(server, limit=200)
        opened = len(server._map)
        port = server.socket.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(50)]
        time.sleep(0.2)  # the kernel completes the handshakes; nothing is accepted yet
        server.handle_accept()  # one turn of the loop
        assert len(server._map) == opened + 50
    finally:
        for client in clients:
            client.close()
        for channel in list(server._map.values()):  # the listener, the trigger, accepted ones
            channel.close()
        server.task_dispatcher.shutdown()
