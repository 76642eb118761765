"""Database outages: which errors mean "the database is unavailable", and one log line each.

During an outage every request, heartbeat and report thread fails the same way; a traceback
for each would bury the log (44 MB in 20 s was seen). Instead an `OutageLog` tracks one
state, "reachable" or not, and logs only its changes: "database unreachable: <reason>" when
the first statement fails, "database reachable again after N s" when statements succeed again.
"""

import logging
import threading
import time

import adbc_driver_manager
import sqlalchemy as sa

log = logging.getLogger(__name__)


def is_unavailable(exc):
    """True for errors that say the database cannot be used right now (unreachable, timed
    out, locked, out of pooled connections), as opposed to a bug in a statement."""
    if isinstance(exc, (sa.exc.TimeoutError,  # no pooled connection became free
                        adbc_driver_manager.OperationalError)):  # the snapshot's connection
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    return False


def short_reason(exc):
    """The first line of what the driver said, without SQLAlchemy's statement and link."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return (text[0] if text else type(original).__name__)[:200]


def unusable_database(exc, url):
    """One line for an operator when the database at `url` cannot be used at start: which
    database (never its password) and what the driver said."""
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True) if url else "(default)"
    except sa.exc.ArgumentError:
        shown = "(DATABASE_URL)"
    return f"cannot use the database {shown}: {short_reason(exc)}"


class OutageLog:
    """Whether the database is reachable, as the statements of this process found it.

    Outages do not start and end cleanly: some connections may work while others still
    fail, and an attempt begun during an outage can fail after it ended. So a success ends
    an outage only `quiet_seconds` after the last failure, and a failure within
    `quiet_seconds` of the end does not start a new one (a lasting outage fails again soon).
    With the connect timeout as `quiet_seconds`, late connection attempts stay quiet.
    """

    def __init__(self, quiet_seconds):
        self.quiet_seconds = max(1.0, quiet_seconds)
        self._lock = threading.Lock()
        self._down_since = None  # monotonic time of the first failure of the current outage
        self._last_failure = 0.0
        self._recovered = -float("inf")
        self._failures = 0

    def failed(self, exc):
        now = time.monotonic()
        with self._lock:
            self._last_failure = now
            self._failures += 1
            if self._down_since is None and now - self._recovered >= self.quiet_seconds:
                self._down_since = now
                self._failures = 1
                log.error("database unreachable: %s", short_reason(exc))

    def succeeded(self):
        if self._down_since is None:  # the common case, without taking the lock
            return
        now = time.monotonic()
        with self._lock:
            if self._down_since is None or now - self._last_failure < self.quiet_seconds:
                return
            log.warning("database reachable again after %.1f s (%d failed operations)",
                        now - self._down_since, self._failures)
            self._down_since = None
            self._recovered = now


def watch(engine, outages):
    """Tell `outages` about every statement and connection attempt of `engine`."""
    @sa.event.listens_for(engine, "handle_error")
    def _on_error(context):
        error = context.sqlalchemy_exception or context.original_exception
        if context.is_disconnect or is_unavailable(error):
            outages.failed(error)

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _on_success(*_args):
        outages.succeeded()
