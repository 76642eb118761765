"""Request and response shapes of the HTTP API (marshmallow), which APIFlask turns into the
OpenAPI document and uses to validate requests."""

from datetime import timezone

from apiflask import Schema
from apiflask.fields import UUID, AwareDateTime, Boolean, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError

from app.storage.models import Report

# What clients are told of a report's job state (queued and running are both "Running").
REPORT_STATES = tuple(dict.fromkeys(Report.PUBLIC_STATUS.values()))


class Error(Schema):
    """Every error answer: the HTTP reason phrase and one line saying what went wrong."""

    error = String(required=True, metadata={"example": "Bad Request"})
    message = String(metadata={"example": "report_id: Not a valid UUID."})


class ReportQuery(Schema):
    report_id = UUID(required=True, metadata={"description": "the id POST /trigger_report gave"})
    format = String(validate=OneOf(["csv", "json"]), metadata={
        "description": "csv or json; without it the Accept header decides (CSV unless JSON "
                       "is preferred)"})


class AsOf(Schema):
    as_of = AwareDateTime(format="iso", default_timezone=timezone.utc, metadata={
        "description": "compute the report as if the data ended at this instant (ISO 8601; "
                       "UTC unless it has an offset): not before the first poll, not in the "
                       "future. Without it: the latest poll."})


class ReportCreated(Schema):
    report_id = String(required=True, metadata={"format": "uuid"})


def instant(metadata=None, **kwargs):
    """An instant: ISO 8601 in UTC with a Z, exact to the microsecond (docs/api.md)."""
    return String(metadata={"format": "date-time", "description": "ISO 8601, UTC",
                            **(metadata or {})}, **kwargs)


class ReportState(Schema):
    """A report's state as JSON: every field is present, null where it does not apply."""

    report_id = String(required=True, metadata={"format": "uuid"})
    status = String(required=True, validate=OneOf(REPORT_STATES))
    progress = Float(required=True, validate=Range(0, 1))
    error = String(required=True, allow_none=True, metadata={
        "description": "when Error: what went wrong"})
    rows = Integer(required=True, allow_none=True, metadata={
        "description": "when Complete: stores in the CSV"})
    created_at = instant(required=True)
    finished_at = instant(required=True, allow_none=True)
    seconds = Float(required=True, allow_none=True, metadata={
        "description": "from trigger to end"})
    as_of = instant(required=True, allow_none=True, metadata={
        "description": "the instant asked for (null: the latest poll)"})
    now = instant(required=True, allow_none=True, metadata={
        "description": "when Complete: the instant the report's windows end at"})
    reused_from = String(required=True, allow_none=True, metadata={
        "format": "uuid", "description": "when Complete without computing: the report of the "
        "same data (nothing ingested since) whose CSV this is"})
    download_url = String(required=True, allow_none=True, metadata={
        "format": "uri", "description": "when Complete: the CSV"})


class Page(Schema):
    page = Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = Integer(load_default=100, validate=Range(min=1, max=1000))


class IngestQuery(Schema):
    kind = String(validate=OneOf(["status", "hours", "timezone"]), metadata={
        "description": "which file a CSV upload is, when its file name does not say"})
    filename = String(validate=Length(max=200), metadata={
        "description": "the file name of a raw CSV upload (store_status.csv, ...)"})


def _no_nul(text):
    """Store ids never hold a NUL character (ingest rejects them; PostgreSQL cannot store one),
    so one in a request is the client's mistake, on every database."""
    if "\x00" in text:
        raise ValidationError("must not contain a NUL character")


class PollsToDelete(Schema):
    store_id = List(String(validate=[Length(min=1, max=200), _no_nul]), load_default=list,
                    metadata={"description": "a store id (repeat for several; none: every "
                                             "store)"})
    from_ = AwareDateTime(data_key="from", format="iso", default_timezone=timezone.utc,
                          metadata={"description": "first instant removed (inclusive)"})
    to = AwareDateTime(format="iso", default_timezone=timezone.utc, metadata={
        "description": "instant where removal stops (exclusive)"})


class FileCounts(Schema):
    kind = String(required=True, validate=OneOf(["status", "hours", "timezone", "deleted"]),
                  metadata={"description": "deleted: polls removed (`flask data delete`); "
                                           "read and loaded count them"})
    name = String(required=True)
    read = Integer(required=True)
    loaded = Integer(required=True)
    duplicate = Integer(required=True)
    rejected = Integer(required=True)


class Rejection(Schema):
    file = String(required=True)
    line = Integer(required=True)
    reason = String(required=True)


class IngestRecord(Schema):
    """One ingest: read = loaded + duplicate + rejected, per file and in total."""

    ingest_id = Integer(required=True)
    source = String(required=True)
    fingerprint = String(required=True, metadata={"description": "SHA-256 of the files"})
    created_at = String(required=True, metadata={"format": "date-time"})
    files = List(Nested(FileCounts), required=True)
    read = Integer(required=True)
    loaded = Integer(required=True)
    duplicate = Integer(required=True)
    rejected = Integer(required=True)


class IngestDetail(IngestRecord):
    rejections_url = String(required=True, metadata={"description": "all rejected rows, paged"})


class IngestResult(IngestDetail):
    already_loaded = Boolean(required=True, metadata={
        "description": "true: the same files were loaded before (this ingest), nothing changed"})
    rejections = List(Nested(Rejection), required=True,
                      metadata={"description": "the first rejected rows"})


class IngestList(Schema):
    total = Integer(required=True)
    page = Integer(required=True)
    per_page = Integer(required=True)
    ingests = List(Nested(IngestRecord), required=True, metadata={"description": "newest first"})


class RejectionPage(Schema):
    ingest_id = Integer(required=True)
    total = Integer(required=True)
    page = Integer(required=True)
    per_page = Integer(required=True)
    rejections = List(Nested(Rejection), required=True)


class DataSummary(Schema):
    stores = Integer(required=True, metadata={"description": "stores named in any file"})
    stores_with_polls = Integer(required=True, metadata={"description": "rows of a report"})
    polls = Integer(required=True)
    first_poll = String(required=True, allow_none=True, metadata={"format": "date-time"})
    latest_poll = String(required=True, allow_none=True, metadata={
        "format": "date-time", "description": "a plain report's now"})
    stores_without_business_hours = Integer(required=True, metadata={
        "description": "open 24x7 for the report"})
    stores_without_timezone = Integer(required=True, metadata={
        "description": "in America/Chicago for the report"})
    stores_with_unknown_timezone = Integer(required=True, metadata={
        "description": "a zone name that is not an IANA zone: America/Chicago too"})
    ingests = Integer(required=True)
    rejected_rows = Integer(required=True)
    rejected_by_reason = Dict(keys=String(), values=Integer(), required=True)
