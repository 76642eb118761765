"""Live-state pages: /incidents (kept incidents with filters, paged), and what the home and
store pages show of the state now (`live_overview()` and `store_now(id)` in templates, for
`_live_status.html` and store.html)."""

from apiflask import APIBlueprint
from flask import render_template, request

from app.engine.instants import iso_instant, parse_instant
from app.live import read

bp = APIBlueprint("live_pages", __name__)

PER_PAGE = 50
WEEK_US = 7 * 86_400_000_000


@bp.app_context_processor
def live_helpers():
    # Callables: a page reads the live state only when its template asks for it.
    return {"live_overview": read.overview, "store_now": read.store_now}


@bp.get("/incidents")
@bp.doc(hide=True)
def incidents():
    args = request.args
    state = args.get("state") if args.get("state") in ("open", "closed") else None
    store_id = args.get("store", "").strip()[:200] or None
    problems, span = [], {}
    for name in ("since", "until"):
        text = args.get(name, "").strip()
        if text:
            try:
                span[name] = parse_instant(text)
            except ValueError as refused:
                problems.append(f"{name}: {refused}")
    cursor = args.get("cursor", "").strip()[:200] or None
    try:
        page = read.incidents(state=state, store_id=store_id, limit=PER_PAGE, cursor=cursor,
                              **{f"{k}_us": v for k, v in span.items()})
    except ValueError:
        problems.append("cursor: not one this page gave")
        page = read.incidents(state=state, store_id=store_id, limit=PER_PAGE,
                              **{f"{k}_us": v for k, v in span.items()})
    # The store page draws the week up to `now`: an incident that ended before it is drawn
    # on the week up to its end.
    if page["now"] is not None:
        week_start = parse_instant(page["now"]) - WEEK_US
        for incident in page["incidents"]:
            ended = incident["end"] and parse_instant(incident["end"]) <= week_start
            incident["chart_as_of"] = incident["end"] if ended else None
    filters = {"state": state or "", "store": store_id or "",
               "since": iso_instant(span["since"]) if "since" in span else args.get("since", ""),
               "until": iso_instant(span["until"]) if "until" in span else args.get("until", "")}
    return render_template("incidents.html", page=page, filters=filters, problems=problems,
                           per_page=PER_PAGE), 400 if problems else 200
