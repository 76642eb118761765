"""HTTP API v1 for data: feed new files (`POST /api/v1/ingest`), list what was loaded, and
summarise the data. Thin views: the work is in `uploads`, `ingest` and `inventory`."""

import threading

from apiflask import APIBlueprint
from apiflask.fields import String
from flask import abort, current_app, request, url_for

from app.api.schemas import (
    DataSummary,
    IngestDetail,
    IngestList,
    IngestQuery,
    IngestResult,
    Page,
    PollsToDelete,
    RejectionPage,
)
from app.engine.instants import datetime_us
from app.ingest import inventory
from app.ingest.bulk import IngestBusy
from app.ingest.load import IngestError, ingest
from app.ingest.remove import delete_polls
from app.ingest.uploads import received

bp = APIBlueprint("data", __name__, url_prefix="/api/v1", tag="Data")

# One ingest at a time in this process; across processes the ingest's lock decides
# (`bulk.writing_transaction`: PostgreSQL's advisory lock, or a lock file beside SQLite's).
_INGESTING = threading.Lock()
BUSY = "another ingest is running; send this one again when it has finished"

_UPLOAD_BODY = {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description":
                                "a zip, or one CSV named after its kind"}}}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string"}},
}}


@bp.post("/ingest")
@bp.input(IngestQuery, location="query", arg_name="query")
@bp.output(IngestResult, status_code=201, description="Loaded: what happened to every row",
           headers={"Location": String(required=True, metadata={
               "description": "this ingest's record"})},
           links={"record": {"operationId": "getIngest",
                             "parameters": {"ingest_id": "$response.body#/ingest_id"}},
                  "rejections": {"operationId": "getRejections",
                                 "parameters": {"ingest_id": "$response.body#/ingest_id"}}})
@bp.doc(operation_id="ingest", extensions={"requestBody": _UPLOAD_BODY}, responses={
    200: {"description": "The same files were loaded before: nothing changed, the earlier "
                         "ingest is described", "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/IngestResult"}}}},
    409: "Another ingest is running",
    413: "The upload is larger than MAX_UPLOAD_MB",
    415: "Not multipart/form-data, application/zip or text/csv",
})
def post_ingest(query):
    """Load a zip or one CSV file

    Send a zip archive or one CSV file (store_status.csv, business_hours.csv or
    store_timezone.csv, or their aliases) as a multipart form with one file, or as the raw
    body (`application/zip`, or `text/csv` with `?kind=` or `?filename=`). Polls are added;
    an hours or timezone file replaces what it says about the stores it names. A whole
    input that cannot be used is refused with 400 and changes nothing.
    """
    with received(request, current_app.config["MAX_UPLOAD_MB"], query.get("kind"),
                  query.get("filename")) as (path, shown):
        if not _INGESTING.acquire(blocking=False):
            abort(409, BUSY)
        try:
            summary = ingest(path, once=True, shown=f"upload {shown}", wait=False)
        except IngestError as exc:
            abort(400, str(exc))
        except IngestBusy:
            abort(409, BUSY)
        finally:
            _INGESTING.release()
    body = inventory.describe_ingest(summary.ingest_id)
    body["already_loaded"] = summary.skipped
    body["rejections_url"] = url_for("data.get_rejections", ingest_id=summary.ingest_id)
    location = url_for("data.get_ingest", ingest_id=summary.ingest_id)
    return body, 200 if summary.skipped else 201, {"Location": location}


@bp.delete("/polls")
@bp.input(PollsToDelete, location="query", arg_name="query")
@bp.output(IngestDetail, description="Removed: the removal's ingest record (one file entry "
           "of kind `deleted`, whose read and loaded count the polls removed)")
@bp.doc(operation_id="deletePolls", responses={409: "An ingest is running"})
def delete_poll_range(query):
    """Remove polls by store and time range

    The polls of the given stores (`store_id`, repeated; none: every store) at instants in
    `[from, to)`. At least one store or one bound is needed. Recorded as an ingest, as
    `flask data delete` does; the next report is computed again.
    """
    bounds = [datetime_us(query.get(name)) for name in ("from_", "to")]
    if not query["store_id"] and bounds == [None, None]:
        abort(400, "name store_id, from or to: removing every poll is not offered")
    if None not in bounds and bounds[1] <= bounds[0]:
        abort(400, "to must be after from")
    if not _INGESTING.acquire(blocking=False):
        abort(409, BUSY)
    try:
        removal = delete_polls(query["store_id"], *bounds, wait=False)
    except IngestBusy:
        abort(409, BUSY)
    finally:
        _INGESTING.release()
    return {**inventory.describe_ingests([removal.ingest_id])[0],
            "rejections_url": url_for("data.get_rejections", ingest_id=removal.ingest_id)}


@bp.get("/ingests/<int(max=2147483647):ingest_id>")
@bp.output(IngestDetail)
@bp.doc(operation_id="getIngest", responses={404: "No ingest with this id"})
def get_ingest(ingest_id):
    """One ingest and its row accounting"""
    found = inventory.describe_ingests([ingest_id])
    if not found:
        abort(404, f"no ingest with id {ingest_id}")
    return {**found[0], "rejections_url": url_for("data.get_rejections", ingest_id=ingest_id)}


@bp.get("/ingests")
@bp.input(Page, location="query", arg_name="paging")
@bp.output(IngestList)
@bp.doc(operation_id="listIngests")
def list_ingests(paging):
    """List past ingests, newest first, with their row accounting"""
    total, ingests = inventory.list_ingests(paging["page"], paging["per_page"])
    return {"total": total, **paging, "ingests": ingests}


@bp.get("/ingests/<int(max=2147483647):ingest_id>/rejections")
@bp.input(Page, location="query", arg_name="paging")
@bp.output(RejectionPage)
@bp.doc(operation_id="getRejections", responses={404: "No ingest with this id"})
def get_rejections(ingest_id, paging):
    """Page through the rows an ingest rejected: file, line and reason"""
    if not inventory.ingest_exists(ingest_id):
        abort(404, f"no ingest with id {ingest_id}")
    page, per_page = paging["page"], paging["per_page"]
    return {"ingest_id": ingest_id, "total": inventory.count_rejections(ingest_id), **paging,
            "rejections": inventory.rejection_page(ingest_id, (page - 1) * per_page, per_page)}


@bp.get("/data")
@bp.output(DataSummary)
@bp.doc(operation_id="getData")
def get_data():
    """What data is loaded

    Stores and polls, the first and latest poll (how fresh the data is), stores the report
    fills in with defaults (no business hours: open 24x7; no or unknown time zone:
    America/Chicago), and rejected rows by reason.
    """
    return inventory.data_summary()
