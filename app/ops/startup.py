"""What a serving process does before it answers requests."""

import ipaddress
import logging
import os
import socket
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config import BUNDLED_DATA
from app.ingest.load import IngestError, ingest
from app.reports.liveness import recover_interrupted

log = logging.getLogger(__name__)


def prepare(app):
    """Load the data (`load_store_data`), then start taking part in report work.

    Raises `SystemExit` with a one-line message when the data cannot be loaded.
    """
    load_store_data(app)
    start_report_work(app)


def upgrade_schema(app):
    """Bring the schema up to date before serving; False (after one line in the log) when
    the database cannot be used: a server that cannot start says why in one line."""
    from sqlalchemy.exc import DBAPIError

    from app.storage import database
    from app.storage.outage import unusable_database

    try:
        database.upgrade(app)
    except DBAPIError as exc:
        log.error("%s", unusable_database(exc, app.config["SQLALCHEMY_DATABASE_URI"]))
        return False
    return True


def load_store_data(app):
    """Fail reports orphaned by a stopped process and load `STORE_DATA` unless loaded before.

    Starts no thread: `run.py` calls it once in the parent of its serving processes, before
    forking them. Raises `SystemExit` with a one-line message when the data cannot be loaded.
    """
    with app.app_context():
        recover_interrupted()
        path = app.config["STORE_DATA"]
        if path:
            _load(path)
        elif "STORE_DATA" not in os.environ and os.environ.get("DATABASE_URL"):
            log.info("DATABASE_URL is set and STORE_DATA is not: the bundled demo data is not "
                     "loaded into that database (STORE_DATA=%s loads it)",
                     BUNDLED_DATA.relative_to(BUNDLED_DATA.parent.parent))
        else:
            log.info("STORE_DATA is empty: no data loaded at start")


def start_report_work(app):
    """Start this process's report threads and its webhook delivery thread: reports queued
    and webhook events written while no process was serving (by `flask ingest`, or before a
    restart) are picked up now."""
    app.extensions["report_runner"].wake()
    app.extensions["webhook_deliverer"].wake()


def _load(path):
    try:
        summary = ingest(path, once=True)
    except IngestError as exc:
        raise SystemExit(f"cannot load STORE_DATA: {exc}") from None
    if not summary.skipped:
        log.debug("loaded %s: %d rows rejected", path, summary.rejected)


def announce(app, host, port, processes):
    """What a new user needs to know, in a few lines: the database, the addresses of the
    dashboard and of the API's documentation, and whether the data is the bundled demo."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    log.info("database: %s", url.render_as_string(hide_password=True))
    path = app.config["STORE_DATA"]
    if path and _same_file(path, BUNDLED_DATA):
        log.info("data: the bundled demo (%s), a generated data set, not real stores; "
                 "STORE_DATA= starts without it", BUNDLED_DATA.name)
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else shown}:{port}"
    log.info("dashboard: %s/  API documentation: %s/docs  (%d serving %s)", address, address,
             processes, "process" if processes == 1 else "processes")


def _same_file(path, other):
    try:
        return Path(path).resolve() == Path(other).resolve()
    except OSError:
        return False


def is_loopback(host):
    """Whether every address `host` names is a loopback one (127.0.0.0/8, ::1)."""
    if not host:
        return False  # every interface
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def refuses_to_serve_open(app, hosts):
    """True (after one line in the log) when the server would listen beyond loopback on one
    of `hosts` while no API key is active: anyone could load data and read reports.
    ALLOW_OPEN=1 serves so anyway; on loopback (the default HOST) the service stays open for
    a first try, unless TRUSTED_PROXIES says a proxy in front of it faces the network.
    run.py asks with its HOST, gunicorn's master with its bind addresses."""
    from app.auth.keys import any_active

    beyond = [host for host in hosts if not is_loopback(host)]
    if app.config["TRUSTED_PROXIES"]:  # behind nginx: the proxy faces the network
        beyond += [f"{host} behind a proxy (TRUSTED_PROXIES)" for host in hosts
                   if is_loopback(host)]
    if app.config["ALLOW_OPEN"] or not beyond:
        return False
    with app.app_context():
        if any_active():
            return False
    log.error("refusing to serve on %s without an API key: create one (flask keys create "
              "NAME), or set ALLOW_OPEN=1 to serve everyone", ", ".join(beyond))
    return True
