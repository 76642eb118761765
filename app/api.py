"""HTTP API of SPEC §3: trigger a report, then poll for it."""

import uuid

from flask import Blueprint, Response, abort, jsonify, request, url_for

from . import jobs
from .models import Report

bp = Blueprint("api", __name__)


@bp.post("/trigger_report")
def trigger_report():
    report_id = jobs.start_report()
    location = url_for("api.get_report", report_id=report_id)
    return jsonify(report_id=report_id), 202, {"Location": location}


@bp.get("/get_report")
def get_report():
    report_id = _report_id_arg()
    report = jobs.get_report(report_id)
    if report is None:
        abort(404, f"no report with id {report_id}")
    headers = {"X-Report-Status": report.status}
    if report.status == Report.RUNNING:
        return jsonify(status=report.status, progress=round(report.progress, 2)), headers
    if report.status == Report.ERROR:
        return jsonify(status=report.status, error=report.error), headers
    if _wants_json():
        return jsonify(status=report.status, report_id=report.id, rows=report.row_count,
                       created_at=report.created_at.isoformat() + "Z",
                       finished_at=report.finished_at.isoformat() + "Z",
                       download_url=url_for("api.get_report", report_id=report.id,
                                            format="csv", _external=True)), headers
    headers["Content-Disposition"] = f'attachment; filename="report-{report.id}.csv"'
    return Response(report.csv, mimetype="text/csv", headers=headers)


@bp.get("/health")
def health():
    return jsonify(status="ok")


def _report_id_arg():
    """The `report_id` query argument as a canonical UUID string, or a 400 answer."""
    raw = request.args.get("report_id", "").strip()
    if not raw:
        abort(400, "the query argument report_id is required")
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        abort(400, f"report_id {raw[:100]!r} is not a valid report id (a UUID)")


def _wants_json():
    """`?format=` decides when given; otherwise the Accept header (CSV unless JSON is preferred)."""
    chosen = request.args.get("format")
    if chosen in ("json", "csv"):
        return chosen == "json"
    if chosen is not None:
        abort(400, "format must be csv or json")
    return request.accept_mimetypes.best_match(["text/csv", "application/json"]) \
        == "application/json"
