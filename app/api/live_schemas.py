"""Shapes of the /api/v1 live-state and webhook endpoints (marshmallow, for APIFlask)."""

from datetime import timezone

from apiflask import Schema
from apiflask.fields import AwareDateTime, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.api.schemas import instant
from app.live.state import STATES
from app.live.webhooks import EVENTS


class IncidentOut(Schema):
    id = Integer(required=True)
    store_id = String(required=True)
    start = instant(required=True)
    end = instant(required=True, allow_none=True, metadata={"description": "null while open"})
    minutes = Float(required=True, metadata={"description": "so far, while open"})
    state = String(required=True, validate=OneOf(["open", "closed"]))


class LiveStatus(Schema):
    now = instant(required=True, allow_none=True, metadata={
        "description": "the latest poll; null before any data"})
    stores = Dict(keys=String(validate=OneOf(STATES)), values=Integer(), required=True,
                  metadata={"description": "how many stores are in each state"})
    open_incidents = List(Nested(IncidentOut), required=True, metadata={
        "description": "the oldest open incidents, at most `limit`"})
    open_total = Integer(required=True, metadata={
        "description": "how many incidents are open (the others: /api/v1/incidents?state=open)"})


class Limit(Schema):
    limit = Integer(load_default=100, validate=Range(1, 500))


class Cursor(Limit):
    cursor = String(validate=Length(max=200), metadata={
        "description": "the next_cursor of the previous page"})


class StoreQuery(Cursor):
    state = String(validate=OneOf(STATES))


class StoreOut(Schema):
    store_id = String(required=True)
    state = String(required=True, validate=OneOf(STATES))
    since = instant(required=True, metadata={
        "description": "when the state began (down: the open incident's start)"})
    latest_poll = instant(required=True)


class StorePage(Schema):
    now = instant(required=True, allow_none=True)
    stores = List(Nested(StoreOut), required=True)
    next_cursor = String(required=True, allow_none=True)


class IncidentQuery(Cursor):
    state = String(validate=OneOf(["open", "closed"]))
    store_id = String(validate=Length(1, 200))
    since = AwareDateTime(format="iso", default_timezone=timezone.utc, metadata={
        "description": "incidents still going on at or after this instant"})
    until = AwareDateTime(format="iso", default_timezone=timezone.utc, metadata={
        "description": "incidents that started before this instant"})


class IncidentPage(Schema):
    now = instant(required=True, allow_none=True)
    incidents = List(Nested(IncidentOut), required=True)
    next_cursor = String(required=True, allow_none=True)


class WebhookIn(Schema):
    url = String(required=True, validate=Length(1, 2000))
    secret = String(required=True, validate=Length(1, 500), load_only=True)
    events = List(String(validate=OneOf(EVENTS)), validate=Length(min=1))
    min_minutes = Float(load_default=0.0, validate=Range(0, 100_000))


class WebhookOut(Schema):
    id = Integer(required=True)
    url = String(required=True)
    events = List(String(), required=True)
    min_minutes = Float(required=True)
    created_at = instant(required=True)


class WebhookListed(WebhookOut):
    """A webhook in a list."""


class WebhookList(Schema):
    webhooks = List(Nested(WebhookListed), required=True)


class AttemptOut(Schema):
    at = instant(required=True)
    status_code = Integer(required=True, allow_none=True)
    error = String(required=True, allow_none=True)
    seconds = Float(required=True)


class DeliveryOut(Schema):
    id = Integer(required=True)
    event_id = String(required=True)
    type = String(required=True, validate=OneOf(EVENTS))
    state = String(required=True, validate=OneOf(["pending", "delivered", "failed"]))
    next_attempt = instant(required=True, allow_none=True)
    attempts = List(Nested(AttemptOut), required=True)


class DeliveryList(Schema):
    webhook_id = Integer(required=True)
    deliveries = List(Nested(DeliveryOut), required=True)
