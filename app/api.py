"""The HTTP API (README, "API"): trigger a report, then poll for it."""

from apiflask import APIBlueprint
from apiflask.fields import String
from apiflask.validators import OneOf
from flask import Response, abort, request, url_for

from . import jobs, retention
from .models import Report
from .schemas import REPORT_STATES, ReportCreated, ReportQuery, ReportState

bp = APIBlueprint("api", __name__, tag="Reports")

_REPORT_STATUS_HEADER = {"X-Report-Status": String(
    required=True, validate=OneOf(REPORT_STATES), metadata={"description": "the report's state"})}


@bp.post("/trigger_report")
@bp.output(ReportCreated, status_code=202, description="Queued; poll the Location",
           headers={"Location": String(required=True, metadata={"description": "where to poll"})},
           links={"poll": {"operationId": "getReport",
                           "parameters": {"report_id": "$response.body#/report_id"}}})
@bp.doc(operation_id="triggerReport")
def trigger_report():
    """Start a report

    The report is computed in the background from one consistent snapshot of the data.
    """
    report_id = jobs.start_report()
    location = url_for("api.get_report", report_id=report_id)
    return {"report_id": report_id}, 202, {"Location": location}


@bp.get("/get_report")
@bp.input(ReportQuery, location="query", arg_name="query")
@bp.output(ReportState, description="The report's state as JSON, or its CSV once Complete",
           headers=_REPORT_STATUS_HEADER)
@bp.doc(operation_id="getReport", responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    404: "No report with this id",
})
def get_report(query):
    """Poll a report

    While it runs: its status and progress. When Complete: the CSV (`text/csv`, as an
    attachment), or JSON with a download link for clients that ask for `application/json`
    (or `format=json`). When it failed: status Error and why.
    """
    report_id = str(query["report_id"])
    report = jobs.get_report(report_id)
    if report is None:
        abort(404, f"no report with id {report_id}")
    if report.expired_at is not None:
        abort(410, retention.gone_message(report_id))
    headers = {"X-Report-Status": report.status}
    if report.status == Report.RUNNING:
        return {"status": report.status, "progress": round(report.progress, 2)}, headers
    if report.status == Report.ERROR:
        return {"status": report.status, "error": report.error}, headers
    if _wants_json(query.get("format")):
        state = {"status": report.status, "report_id": report.id, "rows": report.row_count,
                 "created_at": report.created_at.isoformat() + "Z",
                 "finished_at": report.finished_at.isoformat() + "Z",
                 "download_url": url_for("api.get_report", report_id=report.id,
                                         format="csv", _external=True)}
        if report.reused_from:
            state["reused_from"] = report.reused_from
        return state, headers
    headers["Content-Disposition"] = f'attachment; filename="report-{report.id}.csv"'
    return Response(report.csv, mimetype="text/csv", headers=headers)


def _wants_json(chosen):
    """`format` decides when given; otherwise the Accept header (CSV unless JSON is preferred)."""
    if chosen is not None:
        return chosen == "json"
    return request.accept_mimetypes.best_match(["text/csv", "application/json"]) \
        == "application/json"
