"""HTTP API v1 for the live state: status now, stores by state, incidents, and webhooks."""

from apiflask import APIBlueprint
from flask import abort, current_app

from app.api.live_schemas import (
    DeliveryList,
    IncidentPage,
    IncidentQuery,
    Limit,
    LiveStatus,
    StorePage,
    StoreQuery,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from app.engine.instants import datetime_us
from app.live import read, webhooks

bp = APIBlueprint("live", __name__, url_prefix="/api/v1", tag="Live")


@bp.get("/status")
@bp.input(Limit, location="query", arg_name="query")
@bp.output(LiveStatus)
@bp.doc(operation_id="getStatus")
def get_status(query):
    """The state now: stores per state and the oldest open incidents

    `now` is the latest poll; states and incidents are brought up to date by every ingest.
    At most `limit` open incidents are listed, oldest first; `open_total` says how many
    there are.
    """
    return read.status(query["limit"])


@bp.get("/stores")
@bp.input(StoreQuery, location="query", arg_name="query")
@bp.output(StorePage)
@bp.doc(operation_id="listStores")
def list_stores(query):
    """Stores and their state now, optionally of one state (paged by store id)"""
    try:
        return read.stores(query.get("state"), query["limit"], query.get("cursor"))
    except ValueError as exc:
        abort(400, str(exc))


@bp.get("/incidents")
@bp.input(IncidentQuery, location="query", arg_name="query")
@bp.output(IncidentPage)
@bp.doc(operation_id="listIncidents")
def list_incidents(query):
    """Kept incidents, newest first

    Filter by `state` (open or closed), `store_id`, and `since` / `until` (incidents that
    overlap that span). Page with `limit` and the `next_cursor` of the previous answer.
    """
    span = {f"{name}_us": datetime_us(query.pop(name)) for name in ("since", "until")
            if query.get(name) is not None}
    try:
        return read.incidents(**query, **span)
    except ValueError as exc:
        abort(400, str(exc))


@bp.get("/webhooks")
@bp.output(WebhookList)
@bp.doc(operation_id="listWebhooks")
def list_webhooks():
    """Registered webhooks (never their secrets)"""
    return {"webhooks": webhooks.list_webhooks()}


@bp.post("/webhooks")
@bp.input(WebhookIn, arg_name="body")
@bp.output(WebhookOut, status_code=201)
@bp.doc(operation_id="addWebhook")
def add_webhook(body):
    """Register a webhook

    Deliveries are signed with `secret` (see the alerts page of the documentation). The URL
    must not resolve to a loopback, private or link-local address.
    """
    try:
        return webhooks.add_webhook(body["url"], body["secret"], body.get("events"),
                                    body.get("min_minutes", 0.0),
                                    allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"])
    except webhooks.WebhookRefused as exc:
        abort(400, str(exc))


@bp.get("/webhooks/<int(max=2147483647):webhook_id>")
@bp.output(WebhookOut)
@bp.doc(operation_id="getWebhook", responses={404: "No webhook with this id"})
def get_webhook(webhook_id):
    """One webhook"""
    found = webhooks.get_webhook(webhook_id)
    if found is None:
        abort(404, f"no webhook with id {webhook_id}")
    return found


@bp.delete("/webhooks/<int(max=2147483647):webhook_id>")
@bp.output({}, status_code=204)
@bp.doc(operation_id="removeWebhook", responses={404: "No webhook with this id"})
def remove_webhook(webhook_id):
    """Remove a webhook and its deliveries"""
    if not webhooks.remove_webhook(webhook_id):
        abort(404, f"no webhook with id {webhook_id}")
    return ""


@bp.get("/webhooks/<int(max=2147483647):webhook_id>/deliveries")
@bp.output(DeliveryList)
@bp.doc(operation_id="listDeliveries", responses={404: "No webhook with this id"})
def list_deliveries(webhook_id):
    """The latest 100 deliveries of a webhook, newest first, with every attempt"""
    if webhooks.get_webhook(webhook_id) is None:
        abort(404, f"no webhook with id {webhook_id}")
    return {"webhook_id": webhook_id, "deliveries": webhooks.deliveries(webhook_id)}
