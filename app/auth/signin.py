"""Signing in to the dashboard with an API key, for browsers, which cannot send a Bearer
header from a link or a form.

Once keys exist the pages show the same report data the API guards, so they are guarded
too: a page asked for without a key leads to `/signin`, where the user pastes a key. The
server checks it and starts a session that it keeps itself (table `web_session`): the
browser's cookie holds only a random session token, signed (Flask's session cookie),
HttpOnly, SameSite=Lax and closed with the browser; the table holds the token's SHA-256,
the hash of the key, and when the session ends (`SESSION_HOURS` after sign-in). Signing out
deletes the row, so a copy of the cookie is worth nothing afterwards, and every request
made with the cookie passes the key check again, so revoking the key ends the session too.
State-changing requests made with the cookie also need the page's CSRF token
(`app.auth.csrf`).
"""

import hashlib
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from apiflask import APIBlueprint
from flask import current_app, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from app.auth import keys
from app.extensions import db
from app.storage.database import read_apart
from app.storage.models import WebSession, utcnow

bp = APIBlueprint("signin", __name__)
SESSION_FIELD = "sid"


def init_app(app):
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")
    # The cookie's signature expires with the session (Flask's default is 31 days).
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["SESSION_HOURS"])
    app.session_interface = _SessionsOnlyWithACookie()
    app.register_blueprint(bp)


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def session_key_hash():
    """The hash of the key this browser signed in with, or None (no session, or one that
    was signed out or has expired)."""
    token = session.get(SESSION_FIELD)
    if not isinstance(token, str):
        return None
    with read_apart() as conn:
        return conn.execute(sa.select(WebSession.key_hash).where(
            WebSession.id == _token_hash(token), WebSession.expires_at > utcnow())).scalar()


def signed_in():
    """Whether this browser's cookie names a session (checked against the server or not)."""
    return SESSION_FIELD in session


def forget_session():
    """End this browser's session: on the server, and in its cookie."""
    token = session.get(SESSION_FIELD)
    if isinstance(token, str):
        db.session.execute(sa.delete(WebSession).where(WebSession.id == _token_hash(token)))
        db.session.commit()
    session.clear()


def _start_session(key):
    now = utcnow()
    token = secrets.token_urlsafe(32)
    # Sessions that ended are removed as new ones start (an index on expires_at).
    db.session.execute(sa.delete(WebSession).where(WebSession.expires_at <= now))
    db.session.add(WebSession(
        id=_token_hash(token), key_hash=keys.hash_key(key), created_at=now,
        expires_at=now + timedelta(hours=current_app.config["SESSION_HOURS"])))
    db.session.commit()
    session.clear()  # nothing from before sign-in (a CSRF token included) carries over
    session[SESSION_FIELD] = token


@bp.get("/signin")
@bp.doc(hide=True)
def signin_form():
    """The form; straight on when there is nothing to sign in to, or this browser is in."""
    if not keys.any_active():
        return redirect(url_for("pages.index"))
    signed_in_hash = session_key_hash()
    found = keys.find_hash(signed_in_hash) if signed_in_hash else None
    if found is not None and found.revoked_at is None:
        return redirect(_next_page())
    return render_template("signin.html", next=_next_page())


@bp.post("/signin")
@bp.doc(hide=True)
def signin():
    key = request.form.get("key", "").strip()
    found = keys.find_key(key) if key else None
    if found is None or found.revoked_at is not None:
        message = "That key was revoked." if found is not None else "That key is not valid."
        return render_template("signin.html", next=_next_page(), error=message), \
            403 if found is not None else 401
    _start_session(key)
    return redirect(_next_page(), 303)


@bp.post("/signout")
@bp.doc(hide=True)
def signout():
    forget_session()
    return redirect(url_for("signin.signin_form"), 303)


class _SessionsOnlyWithACookie(SecureCookieSessionInterface):
    """API clients send no session cookie: for them, skip building the cookie's signer
    (a tenth of a poll's time in the app)."""

    def open_session(self, app, request):
        if "HTTP_COOKIE" not in request.environ \
                or self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def _next_page():
    """Where to go after signing in: a path of this site, or the dashboard."""
    wanted = request.values.get("next", "")
    return wanted if is_local_path(wanted) else url_for("pages.index")


def is_local_path(target):
    """Whether `target` is a path on this site and nothing else, as a browser would read it:
    printable characters only (browsers drop tabs and line breaks from a URL, so that
    "/\t/evil.example" becomes "//evil.example"), no backslash (read as a slash), no
    scheme, no host, and one leading slash (two make a host)."""
    if not target or not target.isprintable() or "\\" in target:
        return False
    parts = urlsplit(target)
    return (target.startswith("/") and not target.startswith("//") and not parts.scheme
            and not parts.netloc)


def _instance_secret(path):
    """The key that signs session cookies when SECRET_KEY is not set: random, made once and
    kept in the instance folder, so that every process of this host signs alike. (Processes
    on several hosts need one SECRET_KEY in their environment.)"""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
        try:
            os.link(draft, path)  # atomic: of processes starting together, one key wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes()
