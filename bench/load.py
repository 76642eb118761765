"""Many clients at once: N keep-alive connections poll a report as fast as they are answered.

    python -m bench.load --server run.py --connections 1000 --duration 20
    python -m bench.load --server gunicorn+nginx --connections 1000 --idle 200 --slow 100
    python -m bench.load --server gunicorn+nginx --gunicorn-args "--workers 4"  # other settings
    python -m bench.load --url http://127.0.0.1:5000 --connections 1000   # a running server
    python -m bench.load --server run.py --format csv [--gzip] [--if-none-match]  # downloads

With `--server`, a fresh SQLite database gets the bundled data, the server starts on a free
port, one report is computed, and the connections poll it (`format=json`, a small answer;
the poll a client makes). `--idle` sockets connect and send nothing; `--slow` sockets send a
request line and then one header byte per second: neither may slow down the others.

Prints connections, connections served (at least one answer), errors (failed connects,
non-200 answers, resets, answers slower than the timeout), polls, p50 / p99 latency and
polls per second. Loopback only, bounded in time and connections.
"""

import argparse
import asyncio
import ipaddress
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tests.servers import PROJECT_DIR, Server, child_pids, free_port, poll_until_done, stat_fields

MAX_CONNECTIONS = 5000
MAX_SECONDS = 300
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# The documented deployment's gunicorn settings (README, "PostgreSQL and several processes":
# one worker per CPU, 2 here).
GUNICORN_ARGS = "--workers 2 --threads 8"
SERVERS = {
    "run.py": [sys.executable, "run.py"],
    "gunicorn": [sys.executable, "-m", "gunicorn"],  # + GUNICORN_ARGS or --gunicorn-args
}


@dataclass
class Tally:
    latencies: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)
    served: int = 0  # connections with at least one good answer

    def error(self, kind):
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status, b"connection: close" in head.lower()


async def _poller(host, port, request, deadline, timeout, tally):
    """One client: connect, then poll on the same connection until the deadline."""
    served = False
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        tally.error("connect")
        return
    try:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            writer.write(request)
            try:
                status, closing = await asyncio.wait_for(_read_response(reader), timeout)
            except asyncio.TimeoutError:
                tally.error("timeout")
                return
            except (OSError, asyncio.IncompleteReadError, ValueError):
                tally.error("reset")
                return
            if status not in (200, 304):
                tally.error(f"HTTP {status}")
                continue
            tally.latencies.append(time.perf_counter() - began)
            served = True
            if closing:  # the server ended keep-alive: reconnect, as a client would
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        tally.error("reset")
    finally:
        writer.close()
        tally.served += served


async def _idle(host, port, until):
    """A socket that connects and sends nothing."""
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    writer.close()


async def _slow_headers(host, port, until):
    """A client that sends a request line, then one header byte a second."""
    try:
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while time.monotonic() < until:
            await asyncio.sleep(1)
            writer.write(b"a")
            await writer.drain()
    except OSError:
        return
    finally:
        writer.close()


async def run_load(url, path, connections, seconds, idle=0, slow=0, timeout=10.0,
                   headers=()):
    """Poll `url + path` from `connections` clients for `seconds`, sending `headers` (name,
    value pairs) too; returns a summary dict."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    more = "".join(f"{name}: {value}\r\n" for name, value in headers)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Accept: application/json\r\n{more}\r\n").encode()
    tally = Tally()
    # The idle and slow sockets are opened first and held until the pollers are done.
    hold_until = time.monotonic() + seconds + timeout + 5
    nuisances = [asyncio.create_task(_idle(host, port, hold_until)) for _ in range(idle)]
    nuisances += [asyncio.create_task(_slow_headers(host, port, hold_until))
                  for _ in range(slow)]
    if nuisances:
        await asyncio.sleep(1.0)
    began = time.monotonic()
    deadline = began + seconds
    await asyncio.gather(*(_poller(host, port, request, deadline, timeout, tally)
                           for _ in range(connections)))
    elapsed = time.monotonic() - began
    for task in nuisances:
        task.cancel()
    await asyncio.gather(*nuisances, return_exceptions=True)
    latencies = sorted(tally.latencies)
    return {
        "connections": connections, "served": tally.served,
        "errors": sum(tally.errors.values()), "error_kinds": tally.errors,
        "polls": len(latencies), "seconds": elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies
        else float("nan"),
        "polls_per_s": len(latencies) / elapsed,
    }


def cpu_seconds(pid):
    """CPU time (user + system) of a process and its children alive now, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in [pid, *child_pids(pid)]:
        fields = stat_fields(each)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def start_nginx(listen_port, upstream_port, prefix):
    """Run nginx with `deploy/nginx.conf`, moved to these ports, under `prefix`; returns the
    process once it accepts connections."""
    conf = (PROJECT_DIR / "deploy" / "nginx.conf").read_text()
    for old, new in (("listen 127.0.0.1:8080", f"listen 127.0.0.1:{listen_port}"),
                     ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")):
        if old not in conf:
            raise RuntimeError(f"deploy/nginx.conf has no {old!r}")
        conf = conf.replace(old, new)
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(conf)
    # As root, nginx's workers would run as `nobody`, who cannot enter a private temp folder.
    main = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    with open(prefix / "logs" / "stderr.log", "wb") as log:
        process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                    "-g", main], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(prefix / 'logs' / 'stderr.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("nginx did not start within 20 s")


def start_server(name, work, gunicorn_args=GUNICORN_ARGS):
    """Start a server on a fresh SQLite database with the bundled data; returns it (a
    `tests.servers.Server`, or a `_Both`) and the URL to load."""
    if name == "gunicorn+nginx":
        server, _upstream = start_server("gunicorn", work, gunicorn_args)
        port = free_port()
        return _Both(server, start_nginx(port, server.port, work / "nginx")), \
            f"http://127.0.0.1:{port}"
    command = SERVERS[name]
    if name == "gunicorn":
        command = [*command, *shlex.split(gunicorn_args), "wsgi:app"]
    server = Server(work, command, DATABASE_URL=f"sqlite:///{work / 'load.sqlite3'}",
                    STORE_DATA=str(PROJECT_DIR / "data" / "store-monitoring-data.zip"),
                    LOG_LEVEL="WARNING")
    return server.start(timeout=120), server.url


class _Both:
    """A server and the proxy in front of it, stopped together."""

    def __init__(self, server, proxy):
        self.server, self.proxy, self.process = server, proxy, server.process

    def stop(self, timeout):
        self.proxy.terminate()
        self.proxy.wait(timeout)
        self.server.stop(timeout)


def complete_report(url, chosen_format="json"):
    """Trigger a report and wait until it is Complete; returns the poll path (asking for
    `chosen_format`)."""
    location = requests.post(f"{url}/trigger_report", timeout=10).headers["Location"]
    path = f"{location}&format=json"
    done = poll_until_done(lambda: requests.get(url + path, timeout=5), timeout=120)
    if done.headers["X-Report-Status"] != "Complete":
        raise SystemExit(f"the report ended {done.headers['X-Report-Status']}")
    return f"{location}&format={chosen_format}"


def _loopback(url):
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", choices=[*SERVERS, "gunicorn+nginx"],
                       help="start this server (gunicorn+nginx: deploy/nginx.conf in front)")
    where.add_argument("--url", help="a running server (loopback only)")
    parser.add_argument("--path", help="what to poll (default: a Complete report, as JSON)")
    parser.add_argument("--format", choices=["json", "csv"], default="json",
                        help="poll the Complete report as JSON (its state) or as CSV (the "
                             "download)")
    parser.add_argument("--gzip", action="store_true", help="send Accept-Encoding: gzip")
    parser.add_argument("--if-none-match", action="store_true",
                        help="send the ETag of the first answer back (If-None-Match): "
                             "304 answers without a body")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=20, help="seconds of polling")
    parser.add_argument("--idle", type=int, default=0, help="idle sockets held meanwhile")
    parser.add_argument("--slow", type=int, default=0, help="slow-header clients meanwhile")
    parser.add_argument("--timeout", type=float, default=10, help="an answer slower is an error")
    parser.add_argument("--gunicorn-args", default=GUNICORN_ARGS,
                        help=f"gunicorn's settings (default: the README's, {GUNICORN_ARGS!r})")
    args = parser.parse_args(argv)
    if not 1 <= args.connections + args.idle + args.slow <= MAX_CONNECTIONS:
        parser.error(f"at most {MAX_CONNECTIONS} sockets in all")
    if not 0 < args.duration <= MAX_SECONDS:
        parser.error(f"--duration must be within (0, {MAX_SECONDS}] seconds")
    if args.url and not _loopback(args.url):
        parser.error("--url must be a loopback address")

    server = process = work = None
    try:
        if args.server:
            work = Path(tempfile.mkdtemp(prefix="store-monitor-load-"))
            server, url = start_server(args.server, work, args.gunicorn_args)
            process = server.process
        else:
            url = args.url.rstrip("/")
        path = args.path or complete_report(url, args.format)
        headers = [("Accept-Encoding", "gzip")] if args.gzip else []
        if args.if_none_match:
            first = requests.get(url + path, timeout=10, stream=True,
                                 headers={"Accept-Encoding": "gzip" if args.gzip else
                                          "identity"})
            first.close()
            headers.append(("If-None-Match", first.headers["ETag"]))
        proxy = getattr(server, "proxy", None)
        cpu_before = cpu_seconds(process.pid) if process else None
        proxy_before = cpu_seconds(proxy.pid) if proxy else None
        own_before = time.process_time()
        result = asyncio.run(run_load(url, path, args.connections, args.duration,
                                      args.idle, args.slow, args.timeout, headers))
        own_cpu = time.process_time() - own_before
        cpu = cpu_seconds(process.pid) - cpu_before if process else None
        proxy_cpu = cpu_seconds(proxy.pid) - proxy_before if proxy else None
    finally:
        if server is not None:
            server.stop(30)
        if work is not None:  # the server's database and logs
            shutil.rmtree(work, ignore_errors=True)
    gunicorn = f" ({args.gunicorn_args})" if "gunicorn" in (args.server or "") else ""
    print(f"server: {args.server or url}{gunicorn}; {os.cpu_count()} CPUs; polling {path}"
          + "".join(f"; {name}: {value}" for name, value in headers))
    print(f"idle sockets: {args.idle}, slow-header clients: {args.slow}")
    print(f"connections {result['connections']}  served {result['served']}  "
          f"errors {result['errors']} {result['error_kinds'] or ''}")
    print(f"polls {result['polls']} in {result['seconds']:.1f} s = "
          f"{result['polls_per_s']:.0f} polls/s  p50 {result['p50_ms']:.1f} ms  "
          f"p99 {result['p99_ms']:.1f} ms")
    if cpu is not None and result["polls"]:
        # Less sensitive to other load on the machine than polls/s: the server's own cost.
        print(f"server CPU: {cpu:.1f} s = {1000 * cpu / result['polls']:.2f} ms per poll")
    if proxy_cpu is not None and result["polls"]:
        print(f"nginx CPU: {proxy_cpu:.1f} s = "
              f"{1000 * proxy_cpu / result['polls']:.2f} ms per poll")
    if result["polls"]:
        # The load generator shares the machine: what it takes is not the server's.
        print(f"load generator CPU: {own_cpu:.1f} s = "
              f"{1000 * own_cpu / result['polls']:.2f} ms per poll")
    print(f"load average (1 min) {os.getloadavg()[0]:.1f}")
    return 0 if result["errors"] == 0 and result["served"] == result["connections"] else 1


if __name__ == "__main__":
    sys.exit(main())
