"""JSON error answers: every error a client sees is `{"error": ..., "message": ...}`."""

import logging
import os
import traceback

from flask import current_app
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from app.auth.ratelimit import retry_after_seconds, storage_failed
from app.extensions import db
from app.reports import failures
from app.reports.queue import QueueFull
from app.reports.retention import ReportGone
from app.storage.outage import is_unavailable

log = logging.getLogger(__name__)

UNAVAILABLE = "the database is unavailable at the moment; retry later"
LIMITER_UNAVAILABLE = "the rate limiter's storage is unavailable at the moment; retry later"


def error_response(status, message=None, headers=None):
    body = {"error": HTTP_STATUS_CODES.get(status, "Unknown error")}
    if message:
        body["message"] = message
    return body, status, headers or {}


def unavailable_response():
    """503 with Retry-After: the database cannot be used now, and the client may retry."""
    return error_response(503, UNAVAILABLE,
                          {"Retry-After": str(current_app.config["RETRY_AFTER_SECONDS"])})


def init_app(app):
    @app.error_processor
    def handle_api_error(error):
        # APIFlask's errors: request validation (detail says which field) and apiflask.abort.
        message = _flatten(error.detail) if error.detail else error.message
        return error_response(error.status_code, message, error.headers)

    # Replaces APIFlask's own handler for Werkzeug's exceptions, which would drop their
    # description (the useful part: "no report with id ...", the upload limit, ...).
    @app.errorhandler(HTTPException)
    def handle_http_exception(exc):
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(exc.code, exc.description, headers)

    @app.errorhandler(RateLimitExceeded)
    def handle_rate_limit(exc):
        retry_after = retry_after_seconds(app.extensions["rate_limiter"])
        return error_response(
            429, f"rate limit of {exc.description} reached; try again in {retry_after} s",
            {"Retry-After": str(retry_after)})

    @app.errorhandler(QueueFull)
    def handle_queue_full(exc):
        return error_response(
            429, f"{exc.queued} reports are queued already (MAX_QUEUED_REPORTS); "
                 f"try again in about {exc.retry_after} s", {"Retry-After": str(exc.retry_after)})

    @app.errorhandler(ReportGone)
    def handle_report_gone(exc):
        return error_response(410, str(exc))

    @app.errorhandler(RecursionError)
    def handle_too_deep(exc):
        # A body nested without bound overflows the standard library's JSON parser: the
        # client's mistake. A recursion anywhere else is a bug, answered as one.
        if _raised_in_json_parsing(exc):
            return error_response(400, "the request body is nested too deeply")
        return handle_unexpected(exc)

    @app.errorhandler(Exception)
    def handle_unexpected(exc):
        _discard_session()
        if storage_failed(exc):
            log.warning("rate limiter storage failed: %s", exc)
            return error_response(503, LIMITER_UNAVAILABLE, {
                "Retry-After": str(current_app.config["RETRY_AFTER_SECONDS"])})
        if is_unavailable(exc):
            # The outage log has a line for the whole outage; one per request would flood it.
            app.extensions["database_outages"].failed(exc)
            return unavailable_response()
        # Never show a traceback to a client: log it with a reference the client gets too,
        # answer 500 (the failed transaction was dropped above).
        reference = failures.new_reference()
        log.error("unhandled error (reference %s)", reference, exc_info=exc)
        return error_response(500, f"{InternalServerError.description} (reference {reference})")


def _raised_in_json_parsing(exc):
    """Whether `exc` was raised while the `json` module decoded text."""
    parsers = (os.path.join("json", "decoder.py"), os.path.join("json", "__init__.py"))
    return any(frame.f_code.co_filename.endswith(parsers)
               for frame, _line in traceback.walk_tb(exc.__traceback__))


def _discard_session():
    """Roll back the request's session; with the database gone, that may fail too."""
    try:
        db.session.rollback()
    except Exception as exc:  # noqa: BLE001  (the answer matters more than the rollback)
        log.debug("rollback after an error failed: %s", exc)


def _flatten(detail):
    """Validation details ({location: {field: [messages]}}) as one line."""
    parts = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path if key in ("_schema", "json", "query", "form", "files",
                                            "headers") else [*path, str(key)])
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item, path)
        else:
            parts.append(f"{'.'.join(path)}: {node}" if path else str(node))

    walk(detail, [])
    return "; ".join(parts)[:500]
