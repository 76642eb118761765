"""Start Store Monitor in one process: upgrade the schema, load `STORE_DATA` once, then serve
with waitress.

    python run.py            # http://127.0.0.1:5000 unless HOST / PORT say otherwise

Waitress reads requests in one event loop and hands only complete ones to its threads, so
idle or slow clients hold a socket each, never a thread. The settings below let it keep
`SERVER_CONNECTION_LIMIT` sockets open at once (waitress's default is 100: the 101st client
waited forever), with `poll()` rather than `select()` (which stops at 1,024 descriptors).
"""

import logging
import resource

from waitress import create_server

from app import create_app, database
from app.startup import prepare

log = logging.getLogger("app.run")  # under the package's logger, which has the handler


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
        "ident": "store-monitor",
    }


def _allow_descriptors(wanted):
    """Raise this process's open-file limit towards `wanted` (as far as the hard limit lets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main():
    # Waitress warns at every request that waits for a thread: under load that is most of
    # them (10,000 lines in a 20 s benchmark), and waiting in its queue is the design.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = create_app()
    database.upgrade(app)
    prepare(app)
    settings = server_settings(app.config)
    _allow_descriptors(settings["connection_limit"] + 256)  # sockets, database, log files
    server = create_server(app, **settings)
    _accept_all_pending(server, settings["connection_limit"])
    log.info("serving on http://%s:%s", settings["host"], settings["port"])
    server.run()


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
    main()
