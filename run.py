"""Start Store Monitor: upgrade the schema, load `STORE_DATA` once, then serve with waitress
in `SERVER_PROCESSES` processes (default: one per CPU).

    python run.py            # http://127.0.0.1:5000 unless HOST / PORT say otherwise

Waitress reads requests in one event loop and hands only complete ones to its threads, so
idle or slow clients hold a socket each, never a thread. The settings below let it keep
`SERVER_CONNECTION_LIMIT` sockets open at once (waitress's default is 100: the 101st client
waited forever), with `poll()` rather than `select()` (which stops at 1,024 descriptors).

That loop walks every open connection in Python at each turn: with 1,000 clients one
process spent most of its time walking. So several processes serve, each with its own
listening socket on the same port (SO_REUSEPORT): the kernel spreads new connections among
them and each loop walks only its share. The parent upgrades the schema and loads the data
before forking, then only watches over the children (`app.ops.supervisor`).
"""

import errno
import json
import logging
import os
import resource
import shutil
import socket
import sys
import tempfile

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from app.config import Config  # reads `.env`; imports no prometheus_client

log = logging.getLogger("app.run")  # under the package's logger, which has the handler
# The names a Host header may carry when run.py listens on loopback and TRUSTED_HOSTS is unset.
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"]


def server_settings(config):
    """Waitress's settings for this app (see the README, "Operating")."""
    return {
        "host": config["HOST"],
        "port": config["PORT"],
        "threads": config["SERVER_THREADS"],
        "connection_limit": config["SERVER_CONNECTION_LIMIT"],
        "backlog": config["SERVER_CONNECTION_LIMIT"],
        "asyncore_use_poll": True,
        # A connection silent for this long is closed (an idle keep-alive or a stalled
        # client); a poll every few seconds keeps it open.
        "channel_timeout": config["SERVER_IDLE_TIMEOUT"],
        "cleanup_interval": max(1, config["SERVER_IDLE_TIMEOUT"] // 2),
        "max_request_header_size": 16 * 1024,
        # Bodies are bounded here, before the app (and its key check) sees them: waitress
        # answers 413 as soon as the headers announce a larger Content-Length, and when a
        # chunked body grows past it, instead of storing it first. (It refuses a body of
        # exactly this size, hence the byte more.)
        "max_request_body_size": max_body_bytes(config) + 1,
        "ident": "store-monitor",
    }


def max_body_bytes(config):
    """The largest request body served: MAX_UPLOAD_MB, the upload limit."""
    return int(config["MAX_UPLOAD_MB"] * (1 << 20))


class _JsonErrorTask(ErrorTask):
    """Waitress's own refusals (a body over the limit, headers too large, a malformed
    request) in the API's JSON shape, like every other error a client sees."""

    MESSAGES = {400: "malformed request", 413: "the request body is larger than "
                "MAX_UPLOAD_MB", 431: "the request's headers are over 16 KB"}

    def execute(self):
        error = self.request.error
        body = json.dumps({"error": error.reason, "message": self.MESSAGES.get(
            error.code, error.reason.lower())}).encode() + b"\n"
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    error_task_class = _JsonErrorTask


def _server(app, **settings):
    server = create_server(app, **settings)
    server.channel_class = _Channel
    _accept_all_pending(server, settings["connection_limit"])
    return server


def main():
    # Waitress warns at every request that waits for a thread: under load that is most of
    # them (10,000 lines in a 20 s benchmark), and waiting in its queue is the design.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    processes = max(1, Config.SERVER_PROCESSES)
    shared_metrics = _share_metrics() if processes > 1 else None
    try:
        return _serve(processes)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.error("cannot serve on %s:%s: another server listens there", Config.HOST,
                  Config.PORT)
        return 1
    finally:
        if shared_metrics:
            shutil.rmtree(shared_metrics, ignore_errors=True)


def _serve(processes):
    # Imported only now: prometheus_client decides at import whether counters go to files.
    from app import create_app
    from app.ops.startup import (
        announce,
        is_loopback,
        load_store_data,
        prepare,
        refuses_to_serve_open,
        upgrade_schema,
    )

    if not Config.TRUSTED_HOSTS and not Config.TRUSTED_PROXIES and is_loopback(Config.HOST):
        # On loopback only this machine's programs should reach the service: a web page
        # whose name a DNS rebinding points at 127.0.0.1 sends that name as its Host, and
        # is refused (400). Forked serving processes inherit the setting.
        Config.TRUSTED_HOSTS = LOOPBACK_HOSTS
    app = create_app()
    if not upgrade_schema(app) or refuses_to_serve_open(app, [app.config["HOST"]]):
        return 1
    settings = server_settings(app.config)
    _allow_descriptors(settings["connection_limit"] + 256)  # sockets, database, log files
    sockets = _shared_port_sockets(settings, processes) if processes > 1 else None
    if sockets is None:
        if processes > 1:
            log.warning("serving in one process: several need Linux's SO_REUSEPORT")
        prepare(app)
        server = _server(app, **settings)
        announce(app, settings["host"], settings["port"], 1)
        server.run()
        return 0

    from app.extensions import db
    from app.ops.supervisor import supervise

    load_store_data(app)
    with app.app_context():  # no connection of the parent's may reach a child
        for engine in db.engines.values():
            engine.dispose()
    # Listening only now: during a long load, clients are refused rather than kept waiting.
    for sock in sockets:
        sock.listen(settings["backlog"])
    announce(app, settings["host"], sockets[0].getsockname()[1], processes)
    return supervise(processes, lambda index: _serve_child(sockets, index, settings))


def _serve_child(sockets, index, settings):
    """One serving process: its own app, report threads and event loop on `sockets[index]`."""
    from app import create_app
    from app.ops.startup import start_report_work

    for other, sock in enumerate(sockets):
        if other != index:
            sock.close()
    app = create_app()
    start_report_work(app)
    adjustments = {k: v for k, v in settings.items() if k not in ("host", "port")}
    _server(app, sockets=[sockets[index]], **adjustments).run()


def _shared_port_sockets(settings, count):
    """`count` sockets bound to HOST:PORT with SO_REUSEPORT (not yet listening); None off
    Linux, whose kernel alone spreads connections over such sockets (macOS and the BSDs
    give them all to one). A child that dies leaves its socket open in the parent, so
    connections waiting in its queue are served by the child that replaces it."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return None
    family, kind, proto, _name, address = socket.getaddrinfo(
        settings["host"], settings["port"], type=socket.SOCK_STREAM)[0]
    if address[1]:
        _fail_if_in_use(family, address)
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            except (AttributeError, OSError):  # not this system
                for sock in sockets:
                    sock.close()
                return None
            sock.bind(address)
            address = sock.getsockname()  # PORT=0: the others join the port the first got
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _fail_if_in_use(family, address):
    """Raise OSError (address in use) when another server listens on `address`: sockets
    with SO_REUSEPORT would join its port and share its clients instead."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT only
        probe.bind(address)


def _share_metrics():
    """Make every serving process write its counters where any `/metrics` sums them all
    (prometheus_client's multiprocess mode, as under gunicorn): `PROMETHEUS_MULTIPROC_DIR`,
    or a fresh temporary folder, returned to be removed at exit."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    folder = tempfile.mkdtemp(prefix="store-monitor-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def _allow_descriptors(wanted):
    """Raise this process's open-file limit towards `wanted` (as far as the hard limit lets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _accept_all_pending(server, limit):
    """Make waitress accept every pending connection when its listening socket is ready.

    It accepts one per turn of its event loop, and each turn walks every open connection:
    with 1,000 clients connecting together the last waited seconds to be accepted (a p99 of
    4.9 s in `bench.load`, against a p50 of 0.7 s).
    """
    accept_one = server.handle_accept
    connections = server._map  # waitress's channels: the listener, the trigger, the clients

    def handle_accept():
        while len(connections) < limit:
            before = len(connections)
            accept_one()
            if len(connections) == before:  # nothing pending (or a failed accept)
                return

    server.handle_accept = handle_accept


if __name__ == "__main__":
    raise SystemExit(main())
