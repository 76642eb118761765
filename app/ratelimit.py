"""Rate limits (Flask-Limiter) and the bound on queued reports: `429` with `Retry-After`.

Limits count per client: its API key when it sent a valid one, else its address. Starting a
report has its own limit (`TRIGGER_RATE_LIMIT`); every other request that is not a probe
shares `REQUEST_RATE_LIMIT` (none by default). Counters live in memory, per process, unless
`RATELIMIT_STORAGE_URI` names a shared store such as ``redis://host:6379``, which all
processes then use: gunicorn workers count together.
"""

import math
import time

from flask import current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded
from werkzeug.exceptions import TooManyRequests

from . import errors, keys

# Endpoints that start a report.
TRIGGER_ENDPOINTS = {"api.trigger_report"}


def init_app(app):
    # One limiter per app: a module-wide one would share its counters between apps.
    limiter = Limiter(key_func=_client, app=app, default_limits=[_limit],
                      default_limits_exempt_when=lambda: not _limit())
    # A request without a limit (every poll, by default) skips the limiter's bookkeeping,
    # which was a quarter of a poll's time in the app (README, "Many and slow clients").
    limiter.request_filter(lambda: not _limit())
    _check_only_when_limited(app, limiter)

    @app.errorhandler(RateLimitExceeded)
    def refuse(exc):
        """`429` JSON, with `Retry-After` saying when the limit's window frees up."""
        current = limiter.current_limit
        reset_at = current.reset_at if current else time.time() + 1
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return errors.error_response(
            429, f"rate limit of {exc.description} reached; try again in {retry_after} s",
            {"Retry-After": str(retry_after)})


def _check_only_when_limited(app, limiter):
    """Run Flask-Limiter's hooks only for a request that has a limit: its check before the
    request, and after it the headers and the release of its per-request state (which, run
    for every poll, were a twentieth of a poll's time in the app)."""
    check = limiter._check_request_limit  # the hooks Flask-Limiter registered
    before = app.before_request_funcs.setdefault(None, [])
    after = app.after_request_funcs.setdefault(None, [])
    teardown = app.teardown_request_funcs.setdefault(None, [])
    own = [hook for hook in after + teardown if getattr(hook, "__self__", None) is limiter
           or getattr(hook, "args", ()) == (limiter,)]
    if check not in before or len(own) != 2:
        return  # another version of Flask-Limiter: keep its own hooks as they are

    def check_if_limited():
        if _limit():
            g.rate_limited = True
            check()

    before[before.index(check)] = check_if_limited
    for hooks in (after, teardown):
        for hook in [hook for hook in hooks if hook in own]:
            hooks[hooks.index(hook)] = _only_when_limited(hook)


def _only_when_limited(hook):
    """`hook` (an after-request or teardown hook) for requests whose limit was checked."""
    def when_limited(arg=None):
        return hook(arg) if g.get("rate_limited") else arg
    return when_limited


def _client():
    name = g.get("api_key_name")
    return f"key:{name}" if name else f"address:{request.remote_addr}"


def _limit():
    """This request's limit, "" for none: probes and metrics are never limited."""
    path = request.path
    if path in keys.OPEN_PATHS or path.startswith(keys.OPEN_PREFIXES):
        return ""
    if request.endpoint in TRIGGER_ENDPOINTS:
        return current_app.config["TRIGGER_RATE_LIMIT"]
    return current_app.config["REQUEST_RATE_LIMIT"]


class QueueFull(TooManyRequests):
    """Too many reports wait already; the client should come back later."""

    def __init__(self, queued, retry_after):
        super().__init__(f"{queued} reports are queued already (MAX_QUEUED_REPORTS); "
                         f"try again in about {retry_after} s", retry_after=retry_after)
