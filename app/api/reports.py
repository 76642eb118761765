"""JSON behind the dashboard, for scripts too: reports, their rows, a store's week."""

from apiflask import APIBlueprint
from flask import abort

from app.api.report_schemas import (
    ListQuery,
    ReportList,
    ReportSummary,
    RowsPage,
    RowsQuery,
    Timeline,
)
from app.reports import views

bp = APIBlueprint("reports_api", __name__, url_prefix="/api/v1", tag="Dashboard")


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


@bp.get("/stores/<path:store_id>/timeline")  # an id may hold "/"
@bp.output(Timeline)
@bp.doc(responses={404: "No store with polls has this id"})
def store_timeline(store_id):
    """One store's last 7 days: business time, polls, segments, incidents"""
    timeline = views.store_timeline(store_id)
    if timeline is None:
        abort(404, f"no polls of a store {store_id[:100]!r}")
    return timeline


def _report(report_id):
    report = views.find_report(str(report_id))
    if report is None:
        abort(404, f"no report with id {report_id}")
    return report
