"""The dashboard: server-rendered pages over the same data as /api/v1 (Jinja templates,
with JavaScript only for the live progress bar and the charts)."""

from apiflask import APIBlueprint
from flask import redirect, render_template, request, url_for

from app.engine.instants import parse_instant
from app.ingest import inventory
from app.reports import queue, state, views
from app.reports.retention import ReportGone
from app.reports.table import SORTABLE

# Pages, not API operations: left out of the OpenAPI document (its JSON twins are in it).
bp = APIBlueprint("pages", __name__)
bp.record_once(views.with_store_ids)  # before the routes below use it

PER_PAGE = 50
DEFAULT_SORT = ("downtime_last_week", "desc")  # who was down most, first
# Columns whose first click sorts descending: most downtime first.
DESCENDING_FIRST = frozenset(c for c in SORTABLE if c.startswith("downtime_"))
DOWN_WINDOWS = ("hour", "day", "week")


@bp.get("/")
@bp.doc(hide=True)
def index():
    recent = state.recent(views.RECENT_REPORTS)
    data = views.data_overview()
    latest = views.latest_complete_report(recent)
    latest_summary = views.report_summary(latest) if latest is not None else None
    latest_poll_ago = None
    if data["latest_poll"]:
        latest_poll_ago = views.ago(parse_instant(data["latest_poll"]))
    return render_template(
        "index.html", data=data, latest_poll_ago=latest_poll_ago, latest=latest_summary,
        reports=[r.as_json(views.download_url(r.report_id)) for r in recent])


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
    return render_template("report.html", report=summary, table=rows, sortable=SORTABLE,
                           descending_first=DESCENDING_FIRST)


@bp.get("/stores/<store_id:store_id>", merge_slashes=False)  # an id may hold "/"
@bp.doc(hide=True)
def store(store_id):
    as_of_text = request.args.get("as_of", "").strip()
    as_of_us = None
    if as_of_text:
        try:
            as_of_us = inventory.check_as_of(parse_instant(as_of_text))
        except ValueError as refused:  # not an instant, or not one the data has
            return _not_found(f"No week of store {store_id!r} as of that instant: {refused}.")
    timeline = views.store_timeline(store_id, as_of_us)
    if timeline is None:
        if as_of_us is not None:
            return _not_found(f"Store {store_id!r} has no polls up to {as_of_text}.")
        return _not_found(f"No store with id {store_id!r} has any polls.")
    return render_template("store.html", timeline=timeline,
                           report_id=request.args.get("report", ""))


def _table_args():
    """Sort, order, search, filter and page of the report table, from the query (lenient).
    Without a sort: most downtime last week first."""
    args = request.args
    sort = args.get("sort")
    if sort not in SORTABLE:
        sort, order = DEFAULT_SORT
    else:
        order = "desc" if args.get("order") == "desc" else "asc"
    page = args.get("page", "1")
    down = args.get("down")
    return {"sort": sort, "order": order,
            "query": args.get("q", "").strip()[:200],
            "page": int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1,
            "per_page": PER_PAGE,
            "down": down if down in DOWN_WINDOWS else None}


def _not_found(message):
    return render_template("not_found.html", message=message), 404
