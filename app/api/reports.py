"""JSON behind the dashboard, for scripts too: reports, their rows, a store's week."""

from apiflask import APIBlueprint
from flask import abort, current_app, request, url_for

from app.api.report_schemas import (
    ApiIndex,
    ListQuery,
    ReportList,
    ReportSummary,
    RowsPage,
    RowsQuery,
    Timeline,
    TimelineQuery,
)
from app.engine.instants import datetime_us
from app.ingest import inventory
from app.reports import views

bp = APIBlueprint("reports_api", __name__, url_prefix="/api/v1", tag="Dashboard")
bp.record_once(views.with_store_ids)  # before the routes below use it


@bp.get("")
@bp.output(ApiIndex)
def api_index():
    """The API's index: what each endpoint answers, and links"""
    # Read from the OpenAPI document the code's routes make, so that no endpoint is missing.
    index = request.path
    links = [{"href": path, "method": method.upper(), "description": operation["summary"]}
             for path, operations in current_app.spec["paths"].items() if path != index
             for method, operation in operations.items()
             if isinstance(operation, dict) and "summary" in operation]
    return {"title": "Store Monitor API", "documentation": url_for("openapi.docs"),
            "openapi": url_for("openapi.spec"), "links": links}


@bp.get("/reports")
@bp.input(ListQuery, location="query", arg_name="query")
@bp.output(ReportList)
def list_reports(query):
    """Recent reports, newest first"""
    return {"reports": views.recent_reports(query["limit"])}


@bp.get("/reports/<uuid:report_id>")
@bp.output(ReportSummary)
@bp.doc(responses={404: "No report with this id"})
def report_summary(report_id):
    """One report: state, headline figures, histogram, top downtime stores"""
    return views.report_summary(_report(report_id))


@bp.get("/reports/<uuid:report_id>/rows")
@bp.input(RowsQuery, location="query", arg_name="query")
@bp.output(RowsPage)
@bp.doc(responses={404: "No report with this id", 409: "The report is not Complete"})
def report_rows(report_id, query):
    """A page of a report's rows: sorted, filtered by store id"""
    report = _report(report_id)
    if not report.complete:
        abort(409, f"report {report.report_id} is {report.status}, not Complete")
    return views.report_rows(report, **{"query" if k == "q" else k: v
                                            for k, v in query.items()})


@bp.get("/stores/<store_id:store_id>/timeline", merge_slashes=False)  # ids may hold "/"
@bp.input(TimelineQuery, location="query", arg_name="query")
@bp.output(Timeline)
@bp.doc(responses={404: "No store with polls (up to as_of) has this id"})
def store_timeline(store_id, query):
    """One store's last 7 days: business time, polls, segments, incidents

    With `as_of`, the week ending at that instant, as a report as of it shows it.
    """
    as_of = query.get("as_of")
    as_of_us = None
    if as_of is not None:
        try:
            as_of_us = inventory.check_as_of(datetime_us(as_of))
        except inventory.AsOfRefused as refused:
            abort(400, str(refused))
    timeline = views.store_timeline(store_id, as_of_us)
    if timeline is None:
        abort(404, f"no polls of a store {store_id[:100]!r}"
                   + (" up to as_of" if as_of is not None else ""))
    return timeline


def _report(report_id):
    report = views.find_report(str(report_id))
    if report is None:
        abort(404, f"no report with id {report_id}")
    return report
