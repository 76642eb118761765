"""API keys: making, revoking and finding them, and which paths need none.

While no active key exists the API is open. Once one does, every request except the open
paths (health, metrics, the API description) needs ``Authorization: Bearer <key>``
(`app.auth.guard` checks it). A key is 32 random bytes; only its SHA-256 is stored, which is
enough for a key of that entropy (nothing to guess from the hash), and cheap to check.
"""

import hashlib
import secrets
import time

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.storage.database import read_apart
from app.storage.models import ApiKey, utcnow

KEY_PREFIX = "smk_"
# Paths any client may reach, keys or not: probes, metrics and the API's own description.
OPEN_PATHS = ("/health", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
              "/signin", "/signout")
OPEN_PREFIXES = ("/docs/", "/static/")
# How long a process trusts its answer to "is there an active key?"; a key created by
# another process is enforced after at most this long.
ACTIVE_CACHE_SECONDS = 2.0
# How long a process trusts what it read about one key (its name, whether it is revoked):
# a key revoked by another process is refused everywhere at most this long after. A keyed
# request then costs a SHA-256 and a look-up in memory, not a query. Known or not, at most
# KEY_CACHE_SIZE keys are remembered (beyond that, the memory starts afresh).
KEY_CACHE_SECONDS = 2.0
KEY_CACHE_SIZE = 4096


def init_app(app):
    app.extensions["api_keys_active"] = (0.0, False)  # (valid until, any active key)
    app.extensions["api_key_rows"] = {}  # key hash -> (valid until, row or None)


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
        with read_apart() as conn:
            active = conn.execute(sa.select(ApiKey.id).where(ApiKey.revoked_at.is_(None))
                                  .limit(1)).first() is not None
        current_app.extensions["api_keys_active"] = (now + ACTIVE_CACHE_SECONDS, active)
    return active


def _forget_active():
    current_app.extensions["api_keys_active"] = (0.0, False)
    current_app.extensions["api_key_rows"].clear()


def find_key(key):
    """The key's row (name, revoked_at), or None for a key never created."""
    return find_hash(hash_key(key))


def find_hash(key_hash):
    """The row of the key with this SHA-256, or None. Keys that exist are kept for
    `KEY_CACHE_SECONDS` (at most `KEY_CACHE_SIZE` of them); an unknown hash is read each
    time (one indexed row), so a flood of made-up keys evicts no real one."""
    rows = current_app.extensions["api_key_rows"]
    now = time.monotonic()
    known = rows.get(key_hash)
    if known is not None and known[0] > now:
        return known[1]
    with read_apart() as conn:
        row = conn.execute(sa.select(ApiKey.name, ApiKey.revoked_at)
                           .where(ApiKey.key_hash == key_hash)).first()
    if row is None:
        return None  # unknown keys are not kept: made-up ones must not push out real ones
    while len(rows) >= KEY_CACHE_SIZE:
        rows.pop(next(iter(rows)))  # the oldest entry
    rows[key_hash] = (now + KEY_CACHE_SECONDS, row)
    return row


