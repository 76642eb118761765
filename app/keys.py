"""API keys: `flask keys create|list|revoke`, and the check every request passes.

While no active key exists the API is open, as before. Once one does, every request except
the open paths (health, metrics, the API description) needs ``Authorization: Bearer <key>``:
a missing or unknown key is `401`, a revoked one `403`. A key is 32 random bytes; only its
SHA-256 is stored, which is enough for a key of that entropy (nothing to guess from the
hash), and cheap to check on every request.
"""

import hashlib
import secrets
import time

import click
import sqlalchemy as sa
from flask import current_app, g, redirect, request, url_for
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from .database import with_current_schema
from . import signin
from .extensions import db
from .models import ApiKey, utcnow

KEY_PREFIX = "smk_"
# Paths any client may reach, keys or not: probes, metrics and the API's own description.
OPEN_PATHS = ("/health", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
              "/signin", "/signout")
OPEN_PREFIXES = ("/docs/", "/static/")
# How long a process trusts its answer to "is there an active key?"; a key created by
# another process is enforced after at most this long. Revocation is checked every time.
ACTIVE_CACHE_SECONDS = 2.0


def init_app(app):
    app.extensions["api_keys_active"] = (0.0, False)  # (valid until, any active key)
    app.before_request(check_request)
    app.cli.add_command(keys_command)
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


def hash_key(key):
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(name):
    """Store a new key named `name`; returns the key, which is not kept anywhere."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiKey(name=name, key_hash=hash_key(key), prefix=key[:12]))
    db.session.commit()
    _forget_active()
    return key


def revoke_key(name):
    """Revoke the key named `name`; False when there is no such active key."""
    changed = db.session.execute(
        sa.update(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())).rowcount
    db.session.commit()
    _forget_active()
    return changed == 1


def any_active():
    """Whether some key is active (cached for `ACTIVE_CACHE_SECONDS`)."""
    until, active = current_app.extensions["api_keys_active"]
    now = time.monotonic()
    if now >= until:
        with db.engine.connect() as conn:
            active = conn.execute(sa.select(ApiKey.id).where(ApiKey.revoked_at.is_(None))
                                  .limit(1)).first() is not None
        current_app.extensions["api_keys_active"] = (now + ACTIVE_CACHE_SECONDS, active)
    return active


def _forget_active():
    current_app.extensions["api_keys_active"] = (0.0, False)


def check_request():
    """Before every request: let it through, or answer 401 / 403 (JSON, see errors.py); a
    dashboard page without a key leads to the sign-in page instead (app.signin)."""
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


def find_key(key):
    """The key's row (name, revoked_at), or None for a key never created."""
    return find_hash(hash_key(key))


def find_hash(key_hash):
    """The row of the key with this SHA-256, or None."""
    # Reads on a connection of their own, not the request's session: on SQLite, a
    # transaction that has read cannot always write later (the trigger's insert).
    with db.engine.connect() as conn:
        return conn.execute(sa.select(ApiKey.name, ApiKey.revoked_at)
                            .where(ApiKey.key_hash == key_hash)).first()


def _unauthorized(message):
    return Unauthorized(message, www_authenticate=WWWAuthenticate("bearer"))


@click.group("keys")
def keys_command():
    """Create, list and revoke API keys."""


@keys_command.command("create")
@click.argument("name")
@with_current_schema
def create_command(name):
    """Create a key called NAME and print it (the only time it is shown)."""
    if db.session.execute(sa.select(ApiKey.id).where(ApiKey.name == name)).first():
        raise click.ClickException(f"a key named {name!r} exists already")
    click.echo(create_key(name))
    click.echo(f"key {name!r} created: it is shown only now; clients send it as "
               "'Authorization: Bearer <key>'", err=True)


@keys_command.command("list")
@with_current_schema
def list_command():
    """List the keys (names, first characters, dates; never the keys)."""
    rows = db.session.execute(sa.select(ApiKey).order_by(ApiKey.created_at)).scalars().all()
    if not rows:
        click.echo("no keys: the API is open to every client")
        return
    click.echo(f"{'name':<24}{'key starts':<16}{'created (UTC)':<22}revoked (UTC)")
    for row in rows:
        revoked = f"{row.revoked_at:%Y-%m-%d %H:%M:%S}" if row.revoked_at else "-"
        click.echo(f"{row.name:<24}{row.prefix + '...':<16}"
                   f"{row.created_at:%Y-%m-%d %H:%M:%S}{'':<3}{revoked}")


@keys_command.command("revoke")
@click.argument("name")
@with_current_schema
def revoke_command(name):
    """Revoke the key called NAME: it is refused (403) from now on."""
    if not revoke_key(name):
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"key {name!r} revoked")
    if not any_active():
        click.echo("warning: no active key is left, so the API is open to every client "
                   "again; create a key to close it", err=True)
