"""What the dashboard pages and the /api/v1 endpoints show: reports, their rows, and a
store's week. Plain dicts and lists, ready for a template or for JSON (instants written by
`app.engine.instants`)."""

import time
from urllib.parse import quote
from zoneinfo import ZoneInfo

import numpy as np
from flask import current_app, url_for
from werkzeug.routing import PathConverter

from app.engine.instants import iso_local, iso_utc
from app.engine.timeline import build_timelines, local_days
from app.ingest import inventory
from app.reports import state, table_files
from app.reports.export import hundredths
from app.reports.retention import ReportGone
from app.reports.table import TABLES
from app.storage.store_snapshot import read_store

RECENT_REPORTS = 20
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class StoreIdConverter(PathConverter):
    """A store id in a URL path (`<store_id:...>`): it may hold "/" (matched as a path), and
    links write it as one segment, every "/" as %2F. So "a/../b" stays store "a/../b": a
    browser resolves the dot segments of a path written "a/../b" and would open store "b"."""

    regex = ".+?"  # a path's, except that it may begin with "/" too
    part_isolating = False  # it spans segments (Werkzeug infers this from "/" in the regex)

    def to_url(self, value):
        return quote(str(value), safe="")


def with_store_ids(state):
    """Blueprint hook (`record_once`, before its routes): the app knows `store_id` URLs."""
    state.app.url_map.converters.setdefault("store_id", StoreIdConverter)


# Reports -----------------------------------------------------------------------------------

def find_report(report_id):
    """The report's `ReportState` (after failing it if its worker is gone), or None; raises
    `ReportGone` once retention deleted its CSV."""
    report = state.read(report_id)
    if report is not None and report.expired:
        raise ReportGone(report_id)
    return report


def download_url(report_id):
    """Where a Complete report's CSV is downloaded (`GET /get_report`): under `PUBLIC_URL`
    when it is set, else at the request's host (which `TRUSTED_HOSTS` bounds)."""
    public = current_app.config["PUBLIC_URL"]
    if public:
        return public + url_for("api.get_report", report_id=report_id, format="csv")
    return url_for("api.get_report", report_id=report_id, format="csv", _external=True)


def recent_reports(limit=RECENT_REPORTS):
    """The newest reports as JSON, newest first."""
    return [report.as_json(download_url(report.report_id)) for report in state.recent(limit)]


def report_table(report):
    """The rows of a Complete report: kept by the process, else from its table file (or
    its CSV)."""
    return TABLES.get(report.report_id, lambda: table_files.read(
        report.report_id, lambda: state.csv_text(report.report_id)))


def report_summary(report):
    """State and, once Complete, headline figures, histogram and the top downtime stores."""
    summary = report.as_json(download_url(report.report_id))
    if report.complete:
        table = report_table(report)
        summary.update(figures=table.figures(), histogram=table.histogram(),
                       top_downtime=table.top_downtime())
    return summary


def report_rows(report, sort, order, query, page, per_page, down=None):
    rows, total = report_table(report).page(sort, order == "desc", query, page, per_page,
                                            down=down)
    return {"report_id": report.report_id, "sort": sort, "order": order, "q": query,
            "down": down, "page": page, "per_page": per_page, "total": total,
            "pages": max(1, -(-total // per_page)), "rows": rows}


def latest_complete_report(reports):
    """The newest Complete report of the latest data among `reports` (states, newest first):
    one as of an earlier instant describes the past, not the present. None without one."""
    return next((r for r in reports if r.complete and not r.expired and r.as_of_us is None),
                None)


# The data loaded ------------------------------------------------------------------------

def data_overview():
    """What is loaded (`inventory.data_summary`, kept per state of the data) and the last
    ingest. The caller adds how long ago the latest poll was."""
    _total, last = inventory.list_ingests(1, 1)
    return {**inventory.data_summary(), "last_ingest": last[0] if last else None}


def ago(instant_us, now_s=None):
    """How long before the wall clock `instant_us` was, in words ("3 h 5 min ago")."""
    seconds = int((now_s if now_s is not None else time.time()) - instant_us / 1e6)
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days:,} d {hours} h ago"
    if hours:
        return f"{hours} h {minutes} min ago"
    return f"{minutes} min ago" if minutes else "less than a minute ago"


# One store's week --------------------------------------------------------------------------

def store_timeline(store_id, as_of_us=None):
    """A store's last 7 days as the report computed them; None for a store without polls.

    With `as_of_us`, the week ending at that instant, as a report as of it computes it
    (polls after it left out); None when the store has no poll up to it.
    """
    snapshot = read_store(store_id)
    if snapshot is None:
        return None
    now_us = snapshot.now_us
    if as_of_us is not None:
        kept = snapshot.polls["timestamp_us"].to_numpy() <= as_of_us
        if not kept.any():
            return None
        snapshot.polls = snapshot.polls[kept].reset_index(drop=True)
        now_us = int(as_of_us)
    timelines = build_timelines(snapshot.polls, snapshot.hours, snapshot.zones, now_us)
    week_start, now = timelines.window
    zone_name = timelines.timezone[0]
    zone = ZoneInfo(zone_name)
    instants = snapshot.polls["timestamp_us"].to_numpy()
    active = snapshot.polls["active"].to_numpy()
    in_week = (instants >= week_start) & (instants <= now)
    business, segments = timelines.business, timelines.segments
    seg_start, seg_end, seg_active = segments.start_us, segments.end_us, segments.active
    down = np.flatnonzero(~seg_active)[::-1]  # newest first
    starts, ends = seg_start[down], seg_end[down]
    days = local_days(seg_start, seg_end, seg_active, zone, week_start, now)
    uptime_s, downtime_s = float(timelines.uptime_s[0]), float(timelines.downtime_s[0])
    return {
        "store_id": store_id,
        "timezone": zone_name,
        "timezone_given": (snapshot.zones["timezone_str"].to_numpy()[0]
                           if len(snapshot.zones) else None),
        "now": iso_utc([now])[0],
        "as_of": iso_utc([now])[0] if as_of_us is not None else None,
        "window": iso_utc([week_start, now]),
        "business": [list(pair) for pair in zip(iso_utc(business.start_us),
                                                 iso_utc(business.end_us))],
        "polls": [[t, a] for t, a in zip(iso_utc(instants[in_week]),
                                         active[in_week].tolist())],
        "segments": [[a, b, s] for a, b, s in zip(iso_utc(seg_start), iso_utc(seg_end),
                                                  seg_active.tolist())],
        "incidents": [{"start": a, "end": b, "start_local": la, "end_local": lb,
                       "minutes": round(m, 4)} for a, b, la, lb, m in zip(
            iso_utc(starts), iso_utc(ends), iso_local(starts, zone), iso_local(ends, zone),
            ((ends - starts) / 60e6).tolist())],
        # Hours as the CSV rounds them (`export.hundredths`): one number per fact.
        "days": [{"date": d, "business_hours": b, "uptime_hours": u, "downtime_hours": w}
                 for d, b, u, w in zip(days["date"], *(hundredths(np.asarray(v) / 3600).tolist()
                                                       for v in (days["business_s"],
                                                                 days["uptime_s"],
                                                                 days["business_s"]
                                                                 - days["uptime_s"])))],
        "uptime_last_week_hours": float(hundredths(np.array([uptime_s / 3600]))[0]),
        "downtime_last_week_hours": float(hundredths(np.array([downtime_s / 3600]))[0]),
        "hours": _hours_table(snapshot.hours),
    }


def _hours_table(hours):
    """The weekly hours rows as local text; an empty list means open 24x7."""
    def clock(seconds):
        seconds = 86_400 if seconds == 86_399 else seconds
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}" + (
            f":{seconds % 60:02d}" if seconds % 60 else "")
    return [{"day_of_week": d, "day": WEEKDAYS[d], "start": clock(a), "end": clock(b),
             "overnight": b <= a and b != 86_399}
            for d, a, b in zip(*(hours[c].to_numpy().tolist()
                                 for c in ("day_of_week", "start_local_s", "end_local_s")))]
