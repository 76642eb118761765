"""Prometheus counters of the reports this process ended (served by `app.ops.metrics`)."""

from prometheus_client import Counter, Histogram

PREFIX = "store_monitor_"

REPORTS_FINISHED = Counter(PREFIX + "reports_finished", "Reports this service ended, by "
                           "outcome (complete or error)", ["outcome"])
REPORT_SECONDS = Histogram(
    PREFIX + "report_duration_seconds", "Time from claiming a report to its final state",
    ["outcome"], buckets=(0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600))


def report_finished(outcome, seconds=None):
    """Count a report that ended ("complete" or "error"), with its duration when known."""
    REPORTS_FINISHED.labels(outcome).inc()
    if seconds is not None:
        REPORT_SECONDS.labels(outcome).observe(seconds)
