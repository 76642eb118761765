"""Hardening headers on every answer, and the address links in answers start with.

- `Content-Security-Policy`: the pages run only this service's own scripts and styles
  (no inline code, no other host), may not be framed, and send forms only here. The
  Swagger UI page (`/docs`), whose inline script and style come from APIFlask, gets those
  two blocks allowed by their SHA-256, nothing else.
- `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (for browsers without
  `frame-ancestors`) and `Referrer-Policy: same-origin`.

Links (a report's `download_url`, the OpenAPI document's `servers`) start with `PUBLIC_URL`
when it is set; otherwise with the request's scheme and host, which Flask's `TRUSTED_HOSTS`
bounds (a request naming another host is 400).
"""

import base64
import functools
import hashlib
import re

from flask import current_app, request

POLICY = ("default-src 'self'; script-src 'self'{scripts}; style-src 'self'{styles}; "
          "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
          "form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.S)
_OURS = frozenset(name.lower() for name in (*HEADERS, "Content-Security-Policy"))


def init_app(app):
    app.after_request(add_headers)
    earlier = app.spec_callback  # APIFlask keeps one processor: keep any earlier one too
    app.spec_processor(lambda spec: public_servers(earlier(spec) if earlier else spec))


def add_headers(response):
    headers = response.headers
    if any(name.lower() in _OURS for name, _value in headers):  # a view set some itself
        for name, value in _headers(_policy(b"")):
            headers.setdefault(name, value)
    elif request.path == "/docs" and response.mimetype == "text/html" \
            and not response.direct_passthrough:
        headers.extend(_headers(_policy(response.get_data())))
    else:
        headers.extend(_DEFAULT)  # one pass over the headers, not one per header (2 µs)
    return response


def _headers(policy):
    return [*HEADERS.items(), ("Content-Security-Policy", policy)]


@functools.lru_cache(maxsize=16)
def _policy(page):
    """The policy, allowing the inline scripts and styles of `page` (bytes) by hash."""
    allowed = {b"script": "", b"style": ""}
    for kind, body in _INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        allowed[kind] += f" 'sha256-{digest}'"
    return POLICY.format(scripts=allowed[b"script"], styles=allowed[b"style"])


def public_servers(spec):
    """The OpenAPI document's `servers`: `PUBLIC_URL` when set, else none (clients use the
    address they fetched the document from), never a client's Host header."""
    public = current_app.config.get("PUBLIC_URL")
    if public:
        spec["servers"] = [{"url": public}]
    else:
        spec.pop("servers", None)
    return spec


_DEFAULT = _headers(_policy(b""))
