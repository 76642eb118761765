"""The key check every request passes, and the keys in the OpenAPI document.

A request to a guarded path needs a key once any exists (`app.auth.keys`): a Bearer header,
or the dashboard's sign-in cookie (`app.auth.signin`). A missing or unknown key is `401`, a
revoked one `403`; a page asked for without a key leads to the sign-in form instead.
"""

from flask import g, redirect, request, url_for
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from app.auth import csrf, headers, keys, signin
from app.auth.keys import OPEN_PATHS, OPEN_PREFIXES, any_active, find_hash, find_key


def init_app(app):
    keys.init_app(app)
    app.before_request(check_request)
    csrf.init_app(app)  # after the key check: a request without a key gets its 401 first
    headers.init_app(app)
    earlier = app.spec_callback  # APIFlask keeps one processor: keep any earlier one too
    app.spec_processor(lambda spec: document(earlier(spec) if earlier else spec))


def document(spec):
    """Add the bearer key, and the answers of the key check, to every operation of the
    OpenAPI document that is not open."""
    spec.setdefault("components", {}).setdefault("securitySchemes", {})["ApiKey"] = {
        "type": "http", "scheme": "bearer",
        "description": "Needed once an operator has created a key (`flask keys create`)"}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    answers = {"401": "No key, or an unknown one (once keys exist)",
               "403": "A revoked key"}
    for path, operation in guarded_operations(spec):
        operation["security"] = [{"ApiKey": []}, {}]  # {}: open while no key exists
        for status, description in answers.items():
            operation["responses"].setdefault(
                status, {"description": description, "content": error})
    return spec


def guarded_operations(spec):
    """``(path, operation)`` of the document's operations that are not open (OPEN_PATHS)."""
    for path, operations in spec.get("paths", {}).items():
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, operation


def check_request():
    """Before every request: let it through, or answer 401 / 403 (JSON, see errors.py); a
    dashboard page without a key leads to the sign-in page instead (app.auth.signin)."""
    path = request.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or request.method == "OPTIONS":
        return None
    if not any_active():
        return None
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        row = find_key(key.strip())
    elif (signed_in := signin.session_key_hash()) is not None:
        row = find_hash(signed_in)
        if row is None or row.revoked_at is not None:
            signin.forget_session()  # a key deleted or revoked since: sign in again
            if request.blueprint == "pages":
                return _to_signin()
    elif request.blueprint == "pages":
        return _to_signin()
    else:
        raise _unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    if row is None:
        raise _unauthorized("unknown API key")
    if row.revoked_at is not None:
        raise Forbidden("this API key was revoked")
    g.api_key_name = row.name
    return None


def _to_signin():
    return redirect(url_for("signin.signin_form", next=request.full_path.rstrip("?")))


def _unauthorized(message):
    return Unauthorized(message, www_authenticate=WWWAuthenticate("bearer"))


