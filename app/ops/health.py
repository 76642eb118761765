"""Probes for orchestrators and load balancers.

`/healthz` (alias `/health`) says only that the process answers: it never touches the
database, so an outage does not get healthy processes restarted. `/readyz` says whether this
process can do its work now: the database answers within `READY_TIMEOUT`, its schema is at
the latest migration, and the report runner's heartbeat is alive.
"""

import time

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, String
from apiflask.validators import OneOf
from flask import current_app

from app.auth.ratelimit import storage_check
from app.storage.database import MIGRATIONS_DIR, engine_options, schema_engines
from app.storage.outage import is_unavailable

bp = APIBlueprint("health", __name__, tag="Service")


class Health(Schema):
    status = String(required=True, metadata={"example": "ok"})


class Readiness(Schema):
    """`ready` when every check says `ok`; otherwise each failing check has a short reason."""

    status = String(required=True, validate=OneOf(["ready", "not ready"]))
    checks = Dict(keys=String(), values=String(), required=True, metadata={
        "example": {"database": "ok", "report_runner": "ok"}})


@bp.get("/healthz")
@bp.output(Health)
@bp.doc(operation_id="healthz")
def healthz():
    """Is the process up (liveness)

    Answers without touching the database.
    """
    return {"status": "ok"}


@bp.get("/health")
@bp.output(Health)
@bp.doc(operation_id="health")
def health():
    """Is the process up (alias of /healthz)"""
    return {"status": "ok"}


@bp.get("/readyz")
@bp.output(Readiness, description="Ready: every check is ok")
@bp.doc(operation_id="readyz", responses={503: {
    "description": "Not ready: the failing checks say why",
    "content": {"application/json": {"schema": Readiness}}}})
def readyz():
    """Can this process do its work (readiness)

    The database answers within `READY_TIMEOUT`, its schema is at the latest migration,
    and the report runner's heartbeat is alive.
    """
    checks = readiness()
    ready = all(value == "ok" for value in checks.values())
    return {"status": "ready" if ready else "not ready", "checks": checks}, \
        200 if ready else 503


def readiness():
    """Each check's outcome: "ok", or a short reason fit for any client to read. The rate
    limiter's storage is checked when it is shared (Redis): triggers need it."""
    checks = {"database": _database_check(), "report_runner": _runner_check()}
    limiter = storage_check()
    if limiter is not None:
        checks["rate_limit_storage"] = limiter
    return checks


def _database_check():
    for engine in schema_engines():  # the data, and the report queue if it is elsewhere
        try:
            with _probe_engine(engine.url).connect() as conn:
                current = {row[0] for row in conn.exec_driver_sql(
                    "SELECT version_num FROM alembic_version")}
        except Exception as exc:
            return "unreachable" if is_unavailable(exc) else "cannot read the schema version"
        if current != _heads():
            return "schema not at the latest migration (run flask db upgrade)"
    return "ok"


def _runner_check():
    runner = current_app.extensions["report_runner"]
    last_beat = runner.last_beat
    if last_beat is None:
        return "report runner not started"
    if time.monotonic() - last_beat > current_app.config["STALE_REPORT_SECONDS"]:
        return "report runner heartbeat stopped"
    return "ok"


def _heads():
    extensions = current_app.extensions
    if "migration_heads" not in extensions:
        extensions["migration_heads"] = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
    return extensions["migration_heads"]


def _probe_engine(url):
    """An engine of fresh connections to `url` with every wait bounded by `READY_TIMEOUT`,
    so that the probe answers in time even while the pool's connections hang."""
    probes = current_app.extensions.setdefault("readiness_engines", {})
    key = url.render_as_string(hide_password=False)
    if key not in probes:
        timeout = current_app.config["READY_TIMEOUT"]
        config = {**current_app.config, "SQLALCHEMY_DATABASE_URI": key,
                  "DATABASE_CONNECT_TIMEOUT": timeout, "DATABASE_STATEMENT_TIMEOUT": timeout,
                  "SQLITE_BUSY_TIMEOUT": timeout}
        options = engine_options(config)
        options.pop("pool_timeout", None)
        probes[key] = sa.create_engine(url, poolclass=sa.pool.NullPool, **options)
    return probes[key]
