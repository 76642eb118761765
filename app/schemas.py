"""Request and response shapes of the HTTP API (marshmallow), which APIFlask turns into the
OpenAPI document and uses to validate requests."""

from apiflask import Schema
from apiflask.fields import Dict, Float, Integer, String, UUID
from apiflask.validators import OneOf, Range

REPORT_STATES = ("Running", "Complete", "Error")


class Error(Schema):
    """Every error answer: the HTTP reason phrase and one line saying what went wrong."""

    error = String(required=True, metadata={"example": "Bad Request"})
    message = String(metadata={"example": "report_id: Not a valid UUID."})


class ReportQuery(Schema):
    report_id = UUID(required=True, metadata={"description": "the id POST /trigger_report gave"})
    format = String(validate=OneOf(["csv", "json"]), metadata={
        "description": "csv or json; without it the Accept header decides (CSV unless JSON "
                       "is preferred)"})


class ReportCreated(Schema):
    report_id = String(required=True, metadata={"format": "uuid"})


class ReportState(Schema):
    """A report's state as JSON; which fields are present depends on `status`."""

    status = String(required=True, validate=OneOf(REPORT_STATES))
    progress = Float(validate=Range(0, 1), metadata={"description": "while Running"})
    error = String(metadata={"description": "when Error: what went wrong"})
    report_id = String(metadata={"format": "uuid"})
    rows = Integer(metadata={"description": "when Complete: stores in the CSV"})
    created_at = String(metadata={"format": "date-time"})
    finished_at = String(metadata={"format": "date-time"})
    download_url = String(metadata={"format": "uri", "description": "the CSV"})


class Health(Schema):
    status = String(required=True, metadata={"example": "ok"})


class Readiness(Schema):
    """`ready` when every check says `ok`; otherwise each failing check has a short reason."""

    status = String(required=True, validate=OneOf(["ready", "not ready"]))
    checks = Dict(keys=String(), values=String(), required=True, metadata={
        "example": {"database": "ok", "report_runner": "ok"}})
