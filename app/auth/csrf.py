"""Cross-site request forgery: no other site can make a browser change anything here.

Two checks on every state-changing request (any method but GET, HEAD, OPTIONS and TRACE):

1. Origin: a browser names the page that sent a request in `Origin` (or, failing that,
   `Referer`), and says `Sec-Fetch-Site: cross-site` for a request from another site. When
   it names another origin than this service's (its request's own, or `PUBLIC_URL`), the
   request is refused with 403. Clients that are not browsers send none of these headers.
   This also covers a service without keys, where no cookie is involved.
2. Token (Flask-WTF's `CSRFProtect`): a request that the cookie authenticates (it sends
   a signed-in session cookie and no Bearer key), sign-out included, must carry the token
   of the page it came from: a hidden `csrf_token` field in the pages' forms, an
   `X-CSRFToken` header in their scripts' calls (read from the page's
   `<meta name="csrf-token">`). A missing or wrong token is 400.

Clients with a Bearer key (`Authorization` header) need no token: no browser sends that
header on another site's behalf.
"""

from urllib.parse import urlsplit

from flask import current_app, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import Forbidden

from app.auth import signin

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
csrf = CSRFProtect()


def init_app(app):
    # Checked by `check_request` only where a cookie could authenticate the request.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    # The token lives as long as the session (SESSION_HOURS), not an hour of its own: a
    # dashboard left open would fail its next click.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.before_request(check_request)


def check_request():
    if request.method in SAFE_METHODS:
        return None
    if _cross_site():
        raise Forbidden("cross-site request refused: this service accepts changes only "
                        "from its own pages or from clients with a key")
    if _has_bearer_key():
        return None
    if signin.signed_in():
        csrf.protect()
    return None


def _has_bearer_key():
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


def _cross_site():
    """Whether a browser says this request comes from a page of another origin."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return False  # not a browser, or one that keeps its referrer to itself
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin.lower() not in _own_origins()


def _own_origins():
    origins = {f"{request.scheme}://{request.host}".lower()}
    public = current_app.config.get("PUBLIC_URL")
    if public:
        parts = urlsplit(public)
        origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origins
