"""JSON error answers: every error a client sees is `{"error": ..., "message": ...}`."""

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from .extensions import db

log = logging.getLogger(__name__)


def error_response(status, message=None):
    body = {"error": HTTP_STATUS_CODES.get(status, "Unknown error")}
    if message:
        body["message"] = message
    response = jsonify(body)
    response.status_code = status
    return response


def init_app(app):
    @app.errorhandler(HTTPException)
    def handle_http_exception(exc):
        return error_response(exc.code, exc.description)

    @app.errorhandler(Exception)
    def handle_unexpected(exc):
        # Never show a traceback to a client: log it, answer 500, drop the failed transaction.
        log.error("unhandled error", exc_info=exc)
        db.session.rollback()
        return error_response(500, InternalServerError.description)
