"""JSON behind the dashboard, for scripts too: reports, their rows, a store's week."""

from apiflask import APIBlueprint
from flask import abort, url_for

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
    def link(endpoint, **values):
        return url_for(endpoint, **values)
    return {
        "title": "Store Monitor API", "documentation": link("openapi.docs"),
        "openapi": link("openapi.spec"),
        "links": [
            {"href": link("api.trigger_report"), "method": "POST",
             "description": "start a report (optionally as_of an instant)"},
            {"href": link("api.get_report"), "method": "GET",
             "description": "poll a report: ?report_id=ID (its CSV once Complete)"},
            {"href": link("reports_api.list_reports"), "method": "GET",
             "description": "recent reports, newest first"},
            {"href": "/api/v1/reports/{report_id}", "method": "GET",
             "description": "one report: state, now, as_of, headline figures"},
            {"href": "/api/v1/reports/{report_id}/rows", "method": "GET",
             "description": "a page of a report's rows, sorted and searched"},
            {"href": "/api/v1/stores/{store_id}/timeline", "method": "GET",
             "description": "one store's week (?as_of= for the week ending then)"},
            {"href": link("data.get_data"), "method": "GET",
             "description": "what data is loaded and how fresh it is"},
            {"href": link("data.post_ingest"), "method": "POST",
             "description": "load a zip or one CSV file"},
            {"href": link("data.list_ingests"), "method": "GET",
             "description": "past ingests and their row accounting"},
        ],
    }


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
