"""Webhook alerts: registration, the outbox written with the ingest, and signed deliveries.

`enqueue` runs inside the ingest's transaction: an event and its deliveries exist exactly
when the incident change that caused them was committed. A thread per process (`Deliverer`)
claims one due delivery at a time with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
has one writer), POSTs the event's stored body, records the attempt, and on anything but a
2xx answer sets the next attempt `WEBHOOK_RETRY_SECONDS` x 2^(attempts - 1) later, giving up
a day after the event. Every attempt of an event sends the same body and event id.
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import sqlalchemy as sa

from app.engine.instants import iso_datetime, iso_instant
from app.extensions import db
from app.storage.database import write_locking
from app.storage.models import (
    OPEN_END_US,
    Incident,
    Store,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookNotice,
)

log = logging.getLogger(__name__)

EVENTS = ("incident.opened", "incident.closed", "incident.updated", "incident.removed",
          "store.silent")
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
GIVE_UP_US = 86_400_000_000  # retries stop a day after the event
TIMEOUT_SECONDS = 5.0
LEASE_US = 15_000_000  # longer than an attempt can take
IDLE_SECONDS = 1.0


class WebhookRefused(ValueError):
    """A webhook that cannot be registered (a bad URL or event type); the message says why."""


def now_us():
    return time.time_ns() // 1000


# Registration ----------------------------------------------------------------------------

def check_url(url, allow_private):
    """Refuse a URL that is not http(s), or whose host resolves to a loopback, private,
    link-local, multicast or unspecified address (unless `allow_private`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("url: an http:// or https:// URL with a host is required")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port)}
    except (OSError, ValueError):
        raise WebhookRefused(f"url: cannot resolve host {parts.hostname!r}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_unspecified or ip.is_reserved):
            raise WebhookRefused(f"url: {parts.hostname} resolves to a loopback, private or "
                                 "link-local address (WEBHOOK_ALLOW_PRIVATE=1 allows it)")


def add_webhook(url, secret, events=None, min_minutes=0.0, *, allow_private=False):
    """Register a webhook; returns its row as a dict. Raises `WebhookRefused`."""
    events = list(events or EVENTS)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise WebhookRefused(f"events: unknown {', '.join(unknown)} (known: "
                             f"{', '.join(EVENTS)})")
    if not secret:
        raise WebhookRefused("secret: required")
    if min_minutes < 0:
        raise WebhookRefused("min_minutes: must not be negative")
    check_url(url, allow_private)
    with db.engine.begin() as conn:
        webhook_id = conn.execute(sa.insert(Webhook).values(
            url=url, secret=secret, events=",".join(e for e in EVENTS if e in events),
            min_minutes=float(min_minutes))).inserted_primary_key[0]
    return get_webhook(webhook_id)


def _as_dict(row):
    return {"id": row.id, "url": row.url, "events": row.events.split(","),
            "min_minutes": row.min_minutes, "created_at": iso_datetime(row.created_at)}


def get_webhook(webhook_id):
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(Webhook).where(Webhook.id == webhook_id)).first()
    return None if row is None else _as_dict(row)


def list_webhooks():
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(Webhook).order_by(Webhook.id)).all()
    return [_as_dict(row) for row in rows]


def remove_webhook(webhook_id):
    """Delete a webhook, its deliveries and their attempts; False when there is none."""
    with db.engine.begin() as conn:
        deliveries = sa.select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook_id)
        conn.execute(sa.delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
        conn.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
        conn.execute(sa.delete(WebhookNotice).where(WebhookNotice.webhook_id == webhook_id))
        return conn.execute(sa.delete(Webhook).where(Webhook.id == webhook_id)).rowcount == 1


def pending_deliveries():
    """How many deliveries wait for their first or next attempt."""
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(
            WebhookDelivery.state == PENDING)).scalar()


def deliveries(webhook_id, limit=100):
    """The latest deliveries of a webhook, newest first, each with its attempts."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(WebhookDelivery.id, WebhookDelivery.event_id, WebhookDelivery.state,
                      WebhookDelivery.next_us, WebhookEvent.type)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc()).limit(limit)).all()
        attempts = conn.execute(
            sa.select(WebhookAttempt.delivery_id, WebhookAttempt.at_us,
                      WebhookAttempt.status_code, WebhookAttempt.error, WebhookAttempt.seconds)
            .where(WebhookAttempt.delivery_id.in_([row.id for row in rows]))
            .order_by(WebhookAttempt.id)).all()
    by_delivery = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append({
            "at": iso_instant(attempt.at_us), "status_code": attempt.status_code,
            "error": attempt.error, "seconds": round(attempt.seconds, 3)})
    return [{"id": row.id, "event_id": row.event_id, "type": row.type, "state": row.state,
             "attempts": by_delivery.get(row.id, []),
             "next_attempt": iso_instant(row.next_us) if row.state == PENDING else None}
            for row in rows]


# The outbox ------------------------------------------------------------------------------

def incident_payload(incident_id, store_id, start_us, end_us, now):
    is_open = end_us == OPEN_END_US
    end = now if is_open else end_us
    return {"id": int(incident_id), "store_id": store_id, "start": iso_instant(start_us),
            "end": None if is_open else iso_instant(end_us),
            "minutes": round((end - start_us) / 60e6, 4),
            "state": "open" if is_open else "closed"}


def enqueue(conn, changes, now, became_silent=()):
    """Write the events of these incident changes (`app.live.incidents.diff`, with ids) and
    of stores that became silent, and one delivery per webhook that wants each."""
    hooks = conn.execute(sa.select(Webhook.id, Webhook.events, Webhook.min_minutes)).all()
    if not hooks:
        return
    created = now_us()
    pks = {int(p) for p in changes["store_pk"]} if len(changes) else set()
    # Incidents that reached a webhook's min_minutes since they were last looked at.
    reached = {}
    for hook in hooks:
        if hook.min_minutes > 0:
            rows = conn.execute(
                sa.select(Incident.id, Incident.store_pk, Incident.start_us, Incident.end_us)
                .where(Incident.end_us == OPEN_END_US,
                       Incident.start_us <= now - int(hook.min_minutes * 60e6),
                       ~sa.exists().where(WebhookNotice.webhook_id == hook.id,
                                          WebhookNotice.incident_id == Incident.id))).all()
            reached[hook.id] = rows
            pks |= {row.store_pk for row in rows}
    names = {}
    for part in [sorted(pks)[i:i + 500] for i in range(0, len(pks), 500)]:
        names.update(conn.execute(sa.select(Store.id, Store.store_id).where(
            Store.id.in_(part))).all())
    noticed = set()
    if any(h.min_minutes > 0 for h in hooks) and len(changes):
        ids = [int(i) for i in changes["id"]]
        for part in [ids[i:i + 500] for i in range(0, len(ids), 500)]:
            noticed |= set(conn.execute(sa.select(WebhookNotice.webhook_id,
                                                  WebhookNotice.incident_id).where(
                WebhookNotice.incident_id.in_(part))).all())
    events, deliveries, notices = {}, [], []

    def deliver(hook, kind, key, body_item):
        if kind not in hook.events.split(","):
            return
        if (kind, key) not in events:
            event_id = str(uuid.uuid4())
            body = {"id": event_id, "type": kind, "created_at": iso_instant(created),
                    **body_item}
            events[kind, key] = {"id": event_id, "type": kind, "created_us": created,
                                 "incident_id": body_item.get("incident", {}).get("id"),
                                 "body": json.dumps(body, separators=(",", ":"))}
        deliveries.append({"webhook_id": hook.id, "event_id": events[kind, key]["id"],
                           "state": PENDING, "attempts": 0, "created_us": created,
                           "next_us": created, "lease_us": 0})

    changed_ids = set()
    for row in changes.itertuples(index=False):
        incident_id = int(row.id)
        changed_ids.add(incident_id)
        kind = "incident." + row.kind
        payload = incident_payload(incident_id, names[int(row.store_pk)], int(row.start_us),
                                   int(row.end_us), now)
        for hook in hooks:
            if hook.min_minutes <= 0 or (hook.id, incident_id) in noticed:
                deliver(hook, kind, incident_id, {"incident": payload})
            elif kind != "incident.removed" and payload["minutes"] >= hook.min_minutes:
                # Long enough now: this webhook hears of it for the first time.
                notices.append({"webhook_id": hook.id, "incident_id": incident_id})
                deliver(hook, "incident.opened", ("late", hook.id, incident_id),
                        {"incident": payload})
    for hook in hooks:
        for row in reached.get(hook.id, []):
            if row.id in changed_ids:
                continue
            notices.append({"webhook_id": hook.id, "incident_id": row.id})
            deliver(hook, "incident.opened", ("late", hook.id, row.id), {
                "incident": incident_payload(row.id, names[row.store_pk], row.start_us,
                                             row.end_us, now)})
        for store in became_silent:
            deliver(hook, "store.silent", ("silent", store["store_id"]), {"store": {
                "store_id": store["store_id"], "state": "silent",
                "latest_poll": iso_instant(store["latest_poll_us"]), "since": iso_instant(now)}})
    if events:
        conn.execute(sa.insert(WebhookEvent), list(events.values()))
    if deliveries:
        conn.execute(sa.insert(WebhookDelivery), deliveries)
    if notices:
        conn.execute(sa.insert(WebhookNotice), notices)
    # Forget what the webhooks were told of incidents that are gone.
    gone = [int(i) for i in changes.loc[changes["kind"] == "removed", "id"]] if len(
        changes) else []
    if gone:
        conn.execute(sa.delete(WebhookNotice).where(WebhookNotice.incident_id.in_(gone)))


# Delivery --------------------------------------------------------------------------------

def sign(secret, timestamp, body):
    """The `Store-Monitor-Signature` header: v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def claim(now):
    """Take one due delivery for this process (a lease of LEASE_US); its row, or None."""
    due = (sa.select(WebhookDelivery.id)
           .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_us <= now,
                  WebhookDelivery.lease_us <= now)
           .order_by(WebhookDelivery.next_us, WebhookDelivery.id).limit(1)
           .with_for_update(skip_locked=True))
    with write_locking(db.engine).begin() as conn:
        claimed = conn.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == due.scalar_subquery(),
                   WebhookDelivery.state == PENDING, WebhookDelivery.lease_us <= now)
            .values(lease_us=now + LEASE_US, attempts=WebhookDelivery.attempts + 1)
            .returning(WebhookDelivery.id, WebhookDelivery.webhook_id,
                       WebhookDelivery.event_id, WebhookDelivery.attempts,
                       WebhookDelivery.created_us)).first()
        if claimed is None:
            return None
        hook = conn.execute(sa.select(Webhook.url, Webhook.secret).where(
            Webhook.id == claimed.webhook_id)).first()
        event = conn.execute(sa.select(WebhookEvent.body).where(
            WebhookEvent.id == claimed.event_id)).scalar()
    return claimed, hook, event


def post(url, secret, event_id, body, allow_private):
    """POST one event; the HTTP status, or raise OSError / WebhookRefused."""
    check_url(url, allow_private)
    parts = urlsplit(url)
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    connection = connection_class(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
    timestamp = str(int(time.time()))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": "store-monitor-webhooks",
            "Store-Monitor-Event-Id": event_id, "Store-Monitor-Timestamp": timestamp,
            "Store-Monitor-Signature": sign(secret, timestamp, body)})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def deliver_one(config):
    """Claim and attempt one due delivery; False when none was due."""
    start = now_us()
    claimed = claim(start)
    if claimed is None:
        return False
    delivery, hook, body = claimed
    status, error = None, None
    began = time.monotonic()
    if hook is None:
        error = "webhook removed"
    else:
        try:
            status = post(hook.url, hook.secret, delivery.event_id, body.encode(),
                          config["WEBHOOK_ALLOW_PRIVATE"])
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except WebhookRefused as exc:
            error = str(exc)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
    seconds = time.monotonic() - began
    ended = now_us()
    if error is None:
        values = {"state": DELIVERED, "lease_us": 0}
    else:
        wait_us = int(config["WEBHOOK_RETRY_SECONDS"] * 1e6) * 2 ** min(delivery.attempts - 1, 40)
        next_us = ended + min(wait_us, GIVE_UP_US)
        values = {"next_us": next_us, "lease_us": 0}
        if next_us > delivery.created_us + GIVE_UP_US or hook is None:
            values = {"state": FAILED, "lease_us": 0}
    with write_locking(db.engine).begin() as conn:
        conn.execute(sa.insert(WebhookAttempt).values(
            delivery_id=delivery.id, at_us=ended, status_code=status, error=error,
            seconds=seconds))
        conn.execute(sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery.id)
                     .values(**values))
    return True


class Deliverer:
    """This process's delivery thread: every serving process starts it at start-up
    (`app.ops.startup.start_report_work`); under another server, the first request does.
    It looks for due deliveries every IDLE_SECONDS, so events written by other processes
    (`flask ingest`, another server process) are delivered within about a second."""

    def __init__(self, app):
        self.app = app
        self._thread = None
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def wake(self, *_args, **_kwargs):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-delivery",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self):
        while True:
            try:
                with self.app.app_context():
                    while deliver_one(self.app.config):
                        pass
            except Exception:  # a busy or unreachable database: try again shortly
                log.warning("webhook delivery failed", exc_info=True)
            self._wake.wait(IDLE_SECONDS)
            self._wake.clear()


def init_app(app):
    deliverer = app.extensions["webhook_deliverer"] = Deliverer(app)
    if not app.testing:
        app.before_request(lambda: deliverer.wake() if deliverer._thread is None else None)
