"""Rate limits (Flask-Limiter): `429` with `Retry-After` (answered by `app.api.errors`).

Limits count per client: its API key when it sent a valid one, else its address. Starting a
report has its own limit (`TRIGGER_RATE_LIMIT`); every other request that is not a probe
shares `REQUEST_RATE_LIMIT` (none by default). Counters live in memory, per process, unless
`RATELIMIT_STORAGE_URI` names a shared store such as ``redis://host:6379``, which all
processes then use: gunicorn workers count together.
"""

import math
import time

from flask import current_app, g, request
from flask_limiter import Limit, Limiter
from limits.errors import StorageError

from app.auth import keys

STORAGE_TIMEOUT_SECONDS = 2
# Endpoints that start a report: the API's, and the dashboard's form. They share one limit
# per client (Flask-Limiter's default limits count all endpoints together).
TRIGGER_ENDPOINTS = {"api.trigger_report", "pages.create_report"}


def init_app(app):
    if not (app.config["TRIGGER_RATE_LIMIT"] or app.config["REQUEST_RATE_LIMIT"]):
        return  # no limit at all: no limiter, whose hooks run for every request
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        # A Redis that does not answer fails the request in seconds, not after minutes.
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {
            "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
            "socket_timeout": STORAGE_TIMEOUT_SECONDS})
    # One limiter per app: a module-wide one would share its counters between apps.
    limiter = Limiter(key_func=_client, app=app, default_limits=[Limit(
        _limit, scope=_bucket, shared=True, exempt_when=lambda: not _limit())])
    # A request without a limit (every poll, by default) skips the limiter's check and its
    # storage (docs/architecture.md, "Rate limits and the request path").
    limiter.request_filter(lambda: not _limit())
    app.extensions["rate_limiter"] = limiter


def storage_failed(exc):
    """Whether `exc` is the limiter's shared storage (Redis, ...) failing: the request
    cannot be counted, so it is answered 503 (`app.api.errors`)."""
    limiter = current_app.extensions.get("rate_limiter")
    if limiter is None or current_app.config["RATELIMIT_STORAGE_URI"].startswith("memory"):
        return False
    kinds = limiter.storage.base_exceptions
    return isinstance(exc, (StorageError, *(kinds if isinstance(kinds, tuple) else (kinds,))))


def storage_check():
    """"ok", or why the limiter's storage cannot be used now (for `/readyz`); None when
    counters are in this process's memory (nothing to check)."""
    limiter = current_app.extensions.get("rate_limiter")
    if limiter is None or current_app.config["RATELIMIT_STORAGE_URI"].startswith("memory"):
        return None
    try:
        return "ok" if limiter.storage.check() else "unreachable"
    except Exception:  # noqa: BLE001  (any failure of the storage means not ready)
        return "unreachable"


def retry_after_seconds(limiter):
    """Seconds until the window of the limit that was just exceeded frees up (at least 1)."""
    current = limiter.current_limit
    reset_at = current.reset_at if current else time.time() + 1
    return max(1, math.ceil(reset_at - time.time()))


def _client():
    name = g.get("api_key_name")
    return f"key:{name}" if name else f"address:{request.remote_addr}"


def _bucket(endpoint):
    """Which counter a request counts against: one for all the report triggers, else one
    per endpoint."""
    return "trigger" if endpoint in TRIGGER_ENDPOINTS else endpoint


def _limit():
    """This request's limit, "" for none: probes and metrics are never limited."""
    path = request.path
    if path in keys.OPEN_PATHS or path.startswith(keys.OPEN_PREFIXES):
        return ""
    if request.endpoint in TRIGGER_ENDPOINTS:
        return current_app.config["TRIGGER_RATE_LIMIT"]
    return current_app.config["REQUEST_RATE_LIMIT"]
