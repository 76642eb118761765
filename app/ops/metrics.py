"""Prometheus metrics at `/metrics`.

Two kinds of figures:

- Events seen by this process (requests and their latency, reports it finished and how
  long they took) are `prometheus_client` counters and histograms. Under gunicorn each worker
  counts its own; with `PROMETHEUS_MULTIPROC_DIR` set (an empty folder, before the server
  starts) the workers write them to files there and any worker's `/metrics` sums them all.
- The state of the service (reports by state, queue depth, rows ingested by outcome, the
  latest poll, readiness) is read from the database at each scrape, so every process reports
  the same values and nothing is counted twice.
"""

import functools
import os
import time

import sqlalchemy as sa
from apiflask import APIBlueprint
from flask import Response, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from app.extensions import db
from app.ops.health import readiness
from app.reports.counters import PREFIX
from app.storage import store_snapshot
from app.storage.models import DataVersion, IngestFile, Report

bp = APIBlueprint("metrics", __name__, tag="Service")

disable_created_metrics()  # the `*_created` series double the output and serve no alert


REQUESTS = Counter(PREFIX + "http_requests", "HTTP requests answered, by route, method "
                   "and status", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    PREFIX + "http_request_duration_seconds", "Time to answer an HTTP request, by route",
    ["route", "method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


# The method label takes these values and "other": any client may send any method name.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app):
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_count_request)


def _start_timer():
    g.metrics_started = time.perf_counter()


def _count_request(response):
    # Unknown paths share one label, so that scanners cannot create series without end.
    rule = request.url_rule
    route = rule.rule if rule else "unmatched"
    method = request.method if request.method in KNOWN_METHODS else "other"
    counter, histogram = _series(route, method, response.status_code)
    counter.inc()
    started = g.get("metrics_started")
    if started is not None:
        histogram.observe(time.perf_counter() - started)
    return response


@functools.lru_cache(maxsize=1024)
def _series(route, method, status):
    """The request counter and latency histogram of these labels: `labels()` checks and
    locks at each call, a twentieth of a poll's time; routes, methods and statuses are few."""
    return REQUESTS.labels(route, method, str(status)), REQUEST_SECONDS.labels(route, method)


@bp.get("/metrics")
@bp.doc(operation_id="metrics", responses={200: {
    "description": "Prometheus text exposition format",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics():
    """Metrics for Prometheus"""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        events = CollectorRegistry()
        multiprocess.MultiProcessCollector(events)
    else:
        events = REGISTRY
    state = CollectorRegistry()
    state.register(_StateCollector())
    # The text format version the scraper asks for (Prometheus sends an Accept header).
    encode, content_type = choose_encoder(request.headers.get("Accept"))
    return Response(encode(events) + encode(state), content_type=content_type)


class _StateCollector:
    """Figures read from the database at scrape time."""

    def collect(self):
        checks = readiness()
        ready = GaugeMetricFamily(PREFIX + "ready", "1 when /readyz answers 200")
        ready.add_metric([], float(all(v == "ok" for v in checks.values())))
        yield ready
        up = GaugeMetricFamily(PREFIX + "database_up", "1 when the database answered the "
                               "readiness check")
        up.add_metric([], float(checks["database"] == "ok"))
        yield up
        if checks["database"] != "ok":
            return  # the other figures need the database
        try:
            yield from self._from_database()
        finally:
            db.session.remove()

    def _from_database(self):
        states = GaugeMetricFamily(PREFIX + "reports", "Reports stored, by state",
                                   labels=["state"])
        counts = report_counts()
        for state, count in counts.items():
            states.add_metric([state], count)
        yield states
        queue = GaugeMetricFamily(PREFIX + "report_queue_depth",
                                  "Reports waiting for a thread to compute them")
        queue.add_metric([], counts["queued"])
        yield queue

        rows = CounterMetricFamily(PREFIX + "ingest_rows", "Rows of input files ingested, by "
                                   "file kind and outcome", labels=["kind", "outcome"])
        for kind, loaded, duplicate, rejected in db.session.execute(sa.select(
                IngestFile.kind, sa.func.sum(IngestFile.loaded),
                sa.func.sum(IngestFile.duplicate), sa.func.sum(IngestFile.rejected))
                .group_by(IngestFile.kind)):
            for outcome, value in (("loaded", loaded), ("duplicate", duplicate),
                                   ("rejected", rejected)):
                rows.add_metric([kind, outcome], value or 0)
        yield rows

        latest = latest_poll_us()
        if latest is not None:
            stamp = GaugeMetricFamily(PREFIX + "latest_poll_timestamp_seconds",
                                      "Instant of the latest poll in the database (Unix time)")
            stamp.add_metric([], latest / 1e6)
            yield stamp
            age = GaugeMetricFamily(PREFIX + "latest_poll_age_seconds",
                                    "How old the latest poll in the database is")
            age.add_metric([], time.time() - latest / 1e6)
            yield age
        yield from _live_figures()


def _live_figures():
    """Stores per state now and open incidents (app.live, brought up to date by ingests)."""
    from app.live.read import counts

    stores, open_incidents = counts()
    by_state = GaugeMetricFamily(PREFIX + "stores", "Stores by their state now: up, down, "
                                 "closed (outside business hours) or silent", labels=["state"])
    for state, count in stores.items():
        by_state.add_metric([state], count)
    yield by_state
    opened = GaugeMetricFamily(PREFIX + "open_incidents", "Incidents open now")
    opened.add_metric([], open_incidents)
    yield opened


def report_counts():
    """How many reports are in each state: queued, running, complete, error."""
    counts = dict.fromkeys(Report.STATES, 0)
    counts.update(db.session.execute(
        sa.select(Report.status, sa.func.count()).group_by(Report.status)).all())
    return counts


def latest_poll_us():
    """The latest poll's instant (µs), or None without polls: the store pages' `now`, kept
    per data version (`store_snapshot.latest_poll_us`)."""
    conn = db.session.connection()
    return store_snapshot.latest_poll_us(
        conn, conn.execute(sa.select(DataVersion.version)).scalar())
