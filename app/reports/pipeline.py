"""The report pipeline: a snapshot of the data, the engine, the CSV.

The same steps serve a queued report (`app.reports.runner`), `flask report` and the tests, so they
all get the same answer in the same shape: one `ReportOutput`.
"""

import logging
from dataclasses import dataclass

import pandas as pd
from flask import current_app

from app.cluster.compute import Settings, compute_on_cluster
from app.engine import build_report, report_as_of
from app.extensions import db
from app.reports.export import report_csv
from app.storage.snapshot import read_snapshot

log = logging.getLogger(__name__)

LOGGED_WARNINGS = 5  # per report; the rest are counted


@dataclass(frozen=True)
class ReportOutput:
    """A computed report: its CSV, how many stores it has, and what it was computed from."""

    csv: str
    rows: int
    warnings: pd.DataFrame  # store_id, message
    data_version: str | None  # None when computed on a cluster or as of an instant
    now_us: int | None  # the `now` the windows end at [µs, UTC]; None without polls


def compute_report(progress=None, as_of_us=None):
    """Read a snapshot, run the engine and format the CSV; returns a `ReportOutput`.

    With `as_of_us`, the report is computed as if the data ended at that instant; such a
    report has no data version, so it is never reused.
    """
    progress = progress or (lambda fraction: None)
    version = None  # the cluster reads no data version: its reports are never reused
    if current_app.config["DASK_SCHEDULER"] and as_of_us is None:
        result = compute_on_cluster(db.engine.url, Settings.from_config(current_app.config),
                                    progress)
    else:  # a report as of an instant is computed here, also with a cluster configured
        snapshot = read_snapshot()
        progress(0.4)
        threads = current_app.config["ENGINE_THREADS"]
        if as_of_us is None:
            version = snapshot.version
            result = build_report(snapshot.polls, snapshot.hours, snapshot.zones,
                                  threads=threads)
        else:
            result = report_as_of(snapshot.polls, snapshot.hours, snapshot.zones, as_of_us,
                                  threads=threads)
    progress(0.8)
    _log_warnings(result.warnings, version)
    return ReportOutput(csv=report_csv(result.frame), rows=len(result.frame),
                        warnings=result.warnings, data_version=version,
                        now_us=result.now_us)


_warned_versions = set()  # data versions whose warnings this process logged


def _log_warnings(warnings, version):
    """The data's warnings (an unknown zone...) as WARNING once per data version in this
    process; the next reports of the same data log them at DEBUG (GET /api/v1/data counts
    them too)."""
    level = logging.DEBUG if version is not None and version in _warned_versions \
        else logging.WARNING
    if version is not None:
        _warned_versions.add(version)
    for row in warnings.head(LOGGED_WARNINGS).itertuples():
        log.log(level, "store %s: %s", row.store_id, row.message)
    if len(warnings) > LOGGED_WARNINGS:
        log.log(level, "... and %d more stores with data warnings",
                len(warnings) - LOGGED_WARNINGS)
