"""Shapes of the /api/v1 report and timeline endpoints (marshmallow, for APIFlask)."""

from apiflask import Schema
from apiflask.fields import Boolean, Float, Integer, List, Nested, Raw, String
from apiflask.validators import Length, OneOf, Range

from app.api.schemas import AsOf, ReportState, instant
from app.reports.table import SORTABLE


class ReportList(Schema):
    reports = List(Nested(ReportState), required=True)


class ListQuery(Schema):
    limit = Integer(load_default=20, validate=Range(1, 200))


class Row(Schema):
    store_id = String(required=True)
    uptime_last_hour = Float(required=True, metadata={"description": "minutes"})
    uptime_last_day = Float(required=True, metadata={"description": "hours"})
    uptime_last_week = Float(required=True, metadata={"description": "hours"})
    downtime_last_hour = Float(required=True, metadata={"description": "minutes"})
    downtime_last_day = Float(required=True, metadata={"description": "hours"})
    downtime_last_week = Float(required=True, metadata={"description": "hours"})
    uptime_last_week_pct = Float(required=True, allow_none=True, metadata={
        "description": "uptime as a share of the week's business time, %; null without any"})


class Figures(Schema):
    stores = Integer(required=True)
    stores_with_business_time = Integer(required=True)
    stores_down_last_day = Integer(required=True)
    median_uptime_last_week_pct = Float(required=True, allow_none=True)
    p10_uptime_last_week_pct = Float(required=True, allow_none=True)


class Histogram(Schema):
    edges = List(Float(), required=True, metadata={
        "description": "bin edges, %: round-width bins up to 100 % that hold most stores, "
                       "and one from 0 % for the rest when there are any (the last bin "
                       "includes 100 %)"})
    counts = List(Integer(), required=True)


class ReportSummary(ReportState):
    figures = Nested(Figures, metadata={"description": "when Complete"})
    histogram = Nested(Histogram, metadata={"description": "weekly uptime %, when Complete"})
    top_downtime = List(Nested(Row), metadata={"description": "most downtime last week"})


class RowsQuery(Schema):
    sort = String(load_default="store_id", validate=OneOf(SORTABLE))
    order = String(load_default="asc", validate=OneOf(["asc", "desc"]))
    q = String(load_default="", validate=Length(max=200),
               metadata={"description": "part of a store id, any case"})
    page = Integer(load_default=1, validate=Range(1, 1_000_000))
    per_page = Integer(load_default=50, validate=Range(1, 500))
    down = String(load_default=None, allow_none=True,
                  validate=OneOf(["hour", "day", "week"]), metadata={
                      "description": "only the stores with downtime in this window"})


class RowsPage(Schema):
    report_id = String(required=True)
    sort = String(required=True)
    order = String(required=True)
    q = String(required=True)
    down = String(required=True, allow_none=True)
    page = Integer(required=True)
    per_page = Integer(required=True)
    total = Integer(required=True, metadata={"description": "rows matching q"})
    pages = Integer(required=True)
    rows = List(Nested(Row), required=True)


class Incident(Schema):
    start = instant(required=True)
    end = instant(required=True)
    start_local = String(required=True, metadata={"description": "ISO 8601 with offset"})
    end_local = String(required=True)
    minutes = Float(required=True)


class Day(Schema):
    date = String(required=True, metadata={"format": "date", "description": "local date"})
    business_hours = Float(required=True)
    uptime_hours = Float(required=True)
    downtime_hours = Float(required=True)


class HoursRow(Schema):
    day_of_week = Integer(required=True, metadata={"description": "0 = Monday"})
    day = String(required=True)
    start = String(required=True, metadata={"description": "local HH:MM[:SS]"})
    end = String(required=True)
    overnight = Boolean(required=True)


class TimelineQuery(AsOf):
    pass


class Link(Schema):
    href = String(required=True)
    method = String(required=True)
    description = String(required=True)


class ApiIndex(Schema):
    title = String(required=True)
    documentation = String(required=True, metadata={"description": "the browsable docs"})
    openapi = String(required=True, metadata={"description": "the OpenAPI document"})
    links = List(Nested(Link), required=True)


class Timeline(Schema):
    """One store's last 7 days `[now - 7 d, now)`; instants are ISO 8601 UTC."""

    store_id = String(required=True)
    timezone = String(required=True, metadata={"description": "the zone the report used"})
    timezone_given = String(required=True, allow_none=True)
    now = instant(required=True)
    as_of = instant(required=True, allow_none=True, metadata={
        "description": "the instant asked for (then equal to now); null: the latest poll"})
    window = List(instant(), required=True)
    business = List(List(instant()), required=True, metadata={
        "description": "[start, end] of each stretch of business time in the week"})
    polls = List(Raw(), required=True, metadata={"description": "[instant, active]"})
    segments = List(Raw(), required=True, metadata={
        "description": "[start, end, active]: business time by interpolated status"})
    incidents = List(Nested(Incident), required=True, metadata={"description": "newest first"})
    days = List(Nested(Day), required=True)
    uptime_last_week_hours = Float(required=True)
    downtime_last_week_hours = Float(required=True)
    hours = List(Nested(HoursRow), required=True, metadata={
        "description": "weekly business hours, local; empty: open 24x7"})
