"""The report runner: this process's threads that compute queued reports.

Each thread claims a report from the queue (`app.reports.queue`), computes it through the
pipeline (`app.reports.pipeline`) and records how it ended. A heartbeat thread renews the leases of
the reports in hand, fails interrupted ones (`app.reports.liveness`), applies the retention policy
and wakes a thread for reports nobody claimed.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app

from app.config import refuse_setting
from app.reports import failures, liveness, pipeline, queue, retention, table_files
from app.reports.counters import report_finished
from app.storage.models import Report, utcnow
from app.storage.outage import is_unavailable
from app.storage.retry import with_retries

log = logging.getLogger(__name__)


def init_app(app):
    try:
        retention.parse_policy(app.config["REPORT_RETENTION"])
    except ValueError as mistake:  # a bad policy ends the start, in one line
        refuse_setting(str(mistake))
    runner = app.extensions["report_runner"] = ReportRunner(app)
    # A report queued by this app's requests wakes this app's threads. Both ends are held
    # weakly: the receiver lives as long as the app that holds the runner.
    queue.report_queued.connect(runner.on_report_queued, sender=app)


def run_report(report_id):
    """Compute a report this process has claimed and record how it ended.

    A database outage while it runs makes it Error (or, if the outage is short enough,
    does not matter); recording the final state is retried through an outage for
    `FINAL_WRITE_SECONDS`. If that fails too, the report stays Running for now, but this
    process stops renewing its lease, so it ends in Error once the lease expires.
    """
    began = time.monotonic()
    log.info("report %s started by %s", report_id, liveness.worker_id())
    try:
        as_of_us = queue.as_of_of(report_id)
        # A report as of an instant is never reused, nor used for a plain one.
        if as_of_us is None and current_app.config["REUSE_REPORTS"] \
                and _reuse(report_id, began):
            return

        def progress(fraction):
            _record_progress(report_id, fraction)

        output = pipeline.compute_report(progress, as_of_us=as_of_us)
        final = {"status": Report.COMPLETE, "csv": output.csv, "row_count": output.rows,
                 "data_version": output.data_version, "now_us": output.now_us,
                 "progress": 1.0}
    except Exception as exc:  # the job must end in Error, whatever went wrong
        message, reference = failures.describe(exc)
        log.error("report %s failed after %.2f s (reference %s)", report_id,
                  time.monotonic() - began, reference, exc_info=True)
        final = {"status": Report.ERROR, "error": message}
    seconds = time.monotonic() - began
    try:
        held = with_retries(
            lambda: queue.update_held(report_id, finished_at=utcnow(), **final),
            current_app.config["FINAL_WRITE_SECONDS"])
    except Exception as exc:
        if not is_unavailable(exc):
            log.error("report %s: recording its end failed", report_id, exc_info=True)
        log.warning("report %s: could not record its end (%s); it fails when its lease "
                    "expires", report_id, final["status"])
        return
    outcome = final["status"].lower()
    if held:
        report_finished(outcome, seconds)
        if final["status"] == Report.COMPLETE:
            table_files.prepare(report_id, final["csv"])
    log.info("report %s %s in %.2f s", report_id,
             outcome if held else "ended, but its lease was lost meanwhile", seconds)


def _record_progress(report_id, fraction):
    """Progress is worth a try, not a failed report: an outage here is only logged."""
    try:
        queue.update_held(report_id, progress=fraction)
    except Exception as exc:
        if not is_unavailable(exc):
            raise


def _reuse(report_id, began):
    """Complete the report with the CSV of a Complete report of the same data version, if
    there is one: nothing was ingested since, so its answer is this report's answer."""
    original = queue.complete_report_of_current_data()
    if original is None:
        return False
    done = queue.update_held(
        report_id, status=Report.COMPLETE, csv=original.csv, row_count=original.row_count,
        data_version=original.data_version, now_us=original.now_us, reused_from=original.id,
        progress=1.0, finished_at=utcnow())
    if done:  # a reused report is finished too: store_monitor_reports_finished_total counts it
        report_finished("complete", time.monotonic() - began)
        table_files.prepare(report_id, original.csv)
    log.info("report %s %s the CSV of report %s (data version %s, nothing ingested since) "
             "in %.2f s", report_id, "reuses" if done else "lost its lease reusing",
             original.id, original.data_version, time.monotonic() - began)
    return True


class ReportRunner:
    """This process's share of the work: a thread pool, and a heartbeat thread that renews
    the leases of its reports, fails interrupted ones and picks up reports nobody claimed."""

    def __init__(self, app):
        self.app = app
        self.size = app.config["REPORT_WORKERS"]
        self.executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="report")
        self._lock = threading.Lock()
        self._busy = 0
        self._computing = set()  # ids of the reports this process's threads are computing
        self._heartbeat = None
        self._stopping = threading.Event()
        # When the heartbeat last began a round (time.monotonic()); None: not started.
        self.last_beat = None

    def on_report_queued(self, _app, **_details):
        self.wake()

    def wake(self):
        """Let a free thread claim and run queued reports; start the heartbeat if needed."""
        with self._lock:
            if self._heartbeat is None:
                self.last_beat = time.monotonic()
                self._heartbeat = threading.Thread(target=self._beat, name="report-heartbeat",
                                                   daemon=True)
                self._heartbeat.start()
            if self._busy < self.size:
                self._busy += 1
                self.executor.submit(self._work)

    def shutdown(self):
        """Finish the reports in hand and stop the heartbeat."""
        self.executor.shutdown(wait=True)
        self._stopping.set()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def _work(self):
        try:
            with self.app.app_context():
                while (report_id := queue.claim_next()) is not None:
                    with self._lock:
                        self._computing.add(report_id)
                    try:
                        run_report(report_id)
                    finally:
                        with self._lock:
                            self._computing.discard(report_id)
        except Exception as exc:  # never lose the thread's slot; the heartbeat wakes us again
            if not is_unavailable(exc):  # an outage is logged once, by app.storage.outage
                log.error("report runner failed", exc_info=True)
        finally:
            with self._lock:
                self._busy -= 1

    def _beat(self):
        interval = self.app.config["HEARTBEAT_SECONDS"]
        while not self._stopping.wait(interval):
            self.last_beat = time.monotonic()
            try:
                with self.app.app_context():
                    self._renew_and_recover()
            except Exception as exc:  # a busy database must not stop the heartbeat
                if not is_unavailable(exc):  # an outage is logged once, by app.storage.outage
                    log.warning("report heartbeat failed", exc_info=True)

    def _renew_and_recover(self):
        # Only reports a thread is computing: one whose end could not be recorded must let
        # its lease expire, or it would stay Running for as long as this process lives.
        with self._lock:
            computing = list(self._computing)
        queue.renew_leases(computing)
        liveness.recover_interrupted()
        expired = retention.expire_reports()
        if expired:
            log.info("%d report(s) past REPORT_RETENTION: their CSV deleted", expired)
        if queue.has_unclaimed():
            self.wake()
