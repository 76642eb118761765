"""The dashboard: server-rendered pages over the same data as /api/v1 (Jinja templates,
with JavaScript only for the live progress bar and the charts)."""

from apiflask import APIBlueprint
from flask import redirect, render_template, request, url_for

from app.reports import queue, views
from app.reports.retention import ReportGone
from app.reports.table import SORTABLE

# Pages, not API operations: left out of the OpenAPI document (its JSON twins are in it).
bp = APIBlueprint("pages", __name__)

PER_PAGE = 50


@bp.get("/")
@bp.doc(hide=True)
def index():
    return render_template("index.html", reports=views.recent_reports())


@bp.post("/reports")
@bp.doc(hide=True)
def create_report():
    """The "Run report" form without JavaScript: start one, then show its page."""
    report_id = queue.start_report()
    return redirect(url_for("pages.report", report_id=report_id), 303)


@bp.get("/reports/<uuid:report_id>")
@bp.doc(hide=True)
def report(report_id):
    try:
        found = views.find_report(str(report_id))
    except ReportGone as gone:
        return render_template("not_found.html", title="Report removed",
                               message=str(gone)), 410
    if found is None:
        return _not_found(f"There is no report with id {report_id}.")
    summary = views.report_summary(found)
    rows = None
    if found.complete:
        rows = views.report_rows(found, **_table_args())
    return render_template("report.html", report=summary, table=rows, sortable=SORTABLE)


@bp.get("/stores/<path:store_id>")  # an id may hold "/"
@bp.doc(hide=True)
def store(store_id):
    timeline = views.store_timeline(store_id)
    if timeline is None:
        return _not_found(f"No store with id {store_id!r} has any polls.")
    return render_template("store.html", timeline=timeline,
                           report_id=request.args.get("report", ""))


def _table_args():
    """Sort, order, search and page of the report table, from the query (lenient)."""
    args = request.args
    sort = args.get("sort", "store_id")
    page = args.get("page", "1")
    return {"sort": sort if sort in SORTABLE else "store_id",
            "order": "desc" if args.get("order") == "desc" else "asc",
            "query": args.get("q", "").strip()[:200],
            "page": int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1,
            "per_page": PER_PAGE}


def _not_found(message):
    return render_template("not_found.html", message=message), 404
