"""gunicorn's settings for `wsgi:app`, read from the working folder: the schema upgrade and
the open-server check.

The master upgrades the schema once before it starts any worker, so workers starting
together never race to create tables (they did on SQLite with a separate
QUEUE_DATABASE_URL file: "table api_key already exists"). Like run.py, it refuses to bind
beyond loopback while no API key is active, unless ALLOW_OPEN=1. Other settings come from
the command line or GUNICORN_CMD_ARGS.
"""

import sys


def on_starting(server):
    from app import create_app
    from app.extensions import db
    from app.ops.startup import refuses_to_serve_open, upgrade_schema

    app = create_app()
    # Addresses are (host, port) pairs; a unix socket (a path) is not on the network.
    hosts = [address[0] for address in server.cfg.address if isinstance(address, tuple)]
    if not upgrade_schema(app) or refuses_to_serve_open(app, hosts):
        sys.exit(1)
    with app.app_context():  # no connection of the master's may reach a forked worker
        for engine in db.engines.values():
            engine.dispose()
