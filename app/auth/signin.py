"""Signing in to the dashboard with an API key, for browsers, which cannot send a Bearer
header from a link or a form.

Once keys exist the pages show the same report data the API guards, so they are guarded
too: a page asked for without a key leads to `/signin`, where the user pastes a key. The
server checks it and keeps its SHA-256 (never the key) in Flask's signed session cookie:
HttpOnly, SameSite=Lax (a link from elsewhere opens a page signed in, but no other site's
form or script can make the browser send it with a POST, which is how reports are started
and data uploaded) and closed with the browser. Every request made with the cookie, pages
and the pages' own calls to the API alike, passes the key check again, so revoking the key
ends the session at once.
"""

import os
import secrets
from pathlib import Path

from apiflask import APIBlueprint
from flask import redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from app.auth import keys

bp = APIBlueprint("signin", __name__)
SESSION_FIELD = "api_key_hash"


def init_app(app):
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")
    app.session_interface = _SessionsOnlyWithACookie()
    app.register_blueprint(bp)


def session_key_hash():
    """The hash of the key this browser signed in with, or None."""
    return session.get(SESSION_FIELD)


def forget_session():
    session.pop(SESSION_FIELD, None)


@bp.get("/signin")
@bp.doc(hide=True)
def signin_form():
    """The form; straight on when there is nothing to sign in to, or this browser is in."""
    if not keys.any_active():
        return redirect(url_for("pages.index"))
    signed_in = session_key_hash()
    found = keys.find_hash(signed_in) if signed_in else None
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
    session[SESSION_FIELD] = keys.hash_key(key)
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
    """Where to go after signing in: a path of this site only (never another host)."""
    wanted = request.values.get("next", "")
    if wanted.startswith("/") and not wanted.startswith(("//", "/\\")):
        return wanted
    return url_for("pages.index")


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
