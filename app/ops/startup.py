"""What a serving process does before it answers requests."""

import logging

from app.ingest.load import IngestError, ingest
from app.reports.liveness import recover_interrupted

log = logging.getLogger(__name__)


def prepare(app):
    """Load the data (`load_store_data`), then start taking part in report work.

    Raises `SystemExit` with a one-line message when the data cannot be loaded.
    """
    load_store_data(app)
    start_report_work(app)


def load_store_data(app):
    """Fail reports orphaned by a stopped process and load `STORE_DATA` unless loaded before.

    Starts no thread: `run.py` calls it once in the parent of its serving processes, before
    forking them. Raises `SystemExit` with a one-line message when the data cannot be loaded.
    """
    with app.app_context():
        recover_interrupted()
        path = app.config["STORE_DATA"]
        if path:
            _load(path)
        else:
            log.info("STORE_DATA is empty: no data loaded at start")


def start_report_work(app):
    """Start this process's report threads: reports queued while no process was serving are
    picked up now."""
    app.extensions["report_runner"].wake()


def _load(path):
    try:
        summary = ingest(path, once=True)
    except IngestError as exc:
        raise SystemExit(f"cannot load STORE_DATA: {exc}") from None
    if not summary.skipped:
        log.info("loaded %s: %d rows rejected", path, summary.rejected)
