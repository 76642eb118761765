"""The contract's API (docs/api.md): trigger a report, then poll for it."""

import uuid

from apiflask import APIBlueprint
from apiflask.fields import String
from apiflask.schema_adapters.marshmallow import parser
from apiflask.validators import OneOf
from flask import Response, abort, current_app, request, url_for

from app.api.schemas import REPORT_STATES, AsOf, ReportCreated, ReportQuery, ReportState
from app.engine.instants import datetime_us
from app.ingest import inventory
from app.reports import downloads, queue, state
from app.reports.retention import ReportGone
from app.reports.views import download_url

bp = APIBlueprint("api", __name__, tag="Reports")
_FORMATS = ("csv", "json")  # as ReportQuery.format allows

_REPORT_STATUS_HEADER = {"X-Report-Status": String(
    required=True, validate=OneOf(REPORT_STATES), metadata={"description": "the report's state"})}


@bp.post("/trigger_report")
@bp.output(ReportCreated, status_code=202, description="Queued; poll the Location",
           headers={"Location": String(required=True, metadata={"description": "where to poll"})},
           links={"poll": {"operationId": "getReport",
                           "parameters": {"report_id": "$response.body#/report_id"}}})
@bp.input(AsOf, location="query", arg_name="query")
@bp.input(AsOf, location="json", arg_name="body")
@bp.doc(operation_id="triggerReport")
def trigger_report(query, body):
    """Start a report

    The report is computed in the background from one consistent snapshot of the data.
    With `as_of` (query argument, or JSON body `{"as_of": ...}`), it is computed as if
    the data ended at that instant: later polls are left out and the windows end there.
    """
    report_id = queue.start_report(_as_of_us(query.get("as_of"), body.get("as_of")))
    location = url_for("api.get_report", report_id=report_id)
    return {"report_id": report_id}, 202, {"Location": location}


def _documented_only(schema):
    """Declare `schema`'s query parameters in the OpenAPI document without validating each
    request through webargs: `_poll_query` does that for the poll, the busiest request."""
    def decorator(view):
        bp.input(schema, location="query", validation=False)(view)  # only annotates `view`
        return view
    return decorator


@bp.get("/get_report")
@_documented_only(ReportQuery)
@bp.output(ReportState, description="The report's state as JSON, or its CSV once Complete",
           headers=_REPORT_STATUS_HEADER)
@bp.doc(operation_id="getReport", responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    404: "No report with this id",
})
def get_report():
    """Poll a report

    While it runs: its status and progress. When Complete: the CSV (`text/csv`, as an
    attachment), or JSON with a download link for clients that ask for `application/json`
    (or `format=json`). When it failed: status Error and why.
    """
    report_id, chosen_format = _poll_query()
    report = state.read(report_id)
    if report is None:
        abort(404, f"no report with id {report_id}")
    if report.expired:
        raise ReportGone(report_id)
    headers = {"X-Report-Status": report.status}
    if not report.complete:
        return _json(report.as_json(), headers)
    if _wants_json(chosen_format):
        # The same bytes for every poll of this report through this host: built once.
        body = state.rendered(report_id, (request.scheme, request.host, request.root_path),
                              lambda: current_app.json.dumps(report.as_json(download_url(
                                  report_id))))
        return Response(body, mimetype="application/json", headers=headers)
    return _csv(report_id, headers)


def _csv(report_id, headers):
    """A Complete report's CSV, kept ready in this process (`downloads`): gzipped for
    clients that accept it, and `304 Not Modified` when the client has it already (its
    `If-None-Match` names the answer's ETag)."""
    item = downloads.download(report_id)
    if item is None:  # expired since its state was read
        raise ReportGone(report_id)
    gzipped = request.accept_encodings["gzip"] > 0
    # The answer depends on these request headers besides the URL.
    headers["Vary"] = "Accept, Accept-Encoding"
    etag = item.etag(gzipped)
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304, headers=headers)
        response.set_etag(etag)
        return response
    headers["Content-Disposition"] = f'attachment; filename="report-{report_id}.csv"'
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    response = Response(downloads.compressed(item) if gzipped else item.body,
                        mimetype="text/csv", headers=headers)
    response.set_etag(etag)
    return response


def _poll_query():
    """(report id, format or None) of a poll: a well-formed query is read directly (the same
    way `ReportQuery` reads it: first values, other arguments ignored); anything else goes
    through `ReportQuery` itself, so that its 400 answers stay exactly the schema's."""
    args = request.args
    chosen = args.get("format")
    try:
        if chosen is None or chosen in _FORMATS:
            return str(uuid.UUID(args["report_id"])), chosen
    except (KeyError, ValueError):
        pass
    query = parser.parse(ReportQuery(), request, location="query")  # a 400 unless it passes
    return str(query["report_id"]), query.get("format")


def _json(body, headers):
    """`body` as JSON, built directly: `ReportState.as_json` has the shape of the schema by
    construction, and a poll is the most frequent request, so it skips the schema's
    serialisation."""
    response = current_app.json.response(body)
    response.headers.update(headers)
    return response


def _as_of_us(in_query, in_body):
    """The requested instant [µs, UTC], None for none; 400 when it is not one the data has."""
    if in_query and in_body and in_query != in_body:
        abort(400, "as_of: given twice (query and body) with different values")
    as_of = in_query or in_body
    if as_of is None:
        return None
    try:
        return inventory.check_as_of(datetime_us(as_of))
    except inventory.AsOfRefused as refused:
        abort(400, str(refused))


def _wants_json(chosen):
    """`format` decides when given; otherwise the Accept header (CSV unless JSON is preferred)."""
    if chosen is not None:
        return chosen == "json"
    return request.accept_mimetypes.best_match(["text/csv", "application/json"]) \
        == "application/json"
