"""Retrying a database operation through a short outage, for a bounded time."""

import time

from app.storage.outage import is_unavailable


def with_retries(operation, seconds, first_delay=0.1, max_delay=2.0, sleep=time.sleep,
                 clock=time.monotonic):
    """`operation()`, tried again while it fails because the database is unavailable.

    The pauses double from `first_delay` up to `max_delay`, and no attempt starts after
    `seconds` have passed. Returns what `operation` returned; raises its last error when
    time is up, or at once when the error is not about availability (a bug does not heal).
    """
    deadline = clock() + seconds
    delay = first_delay
    while True:
        try:
            return operation()
        except Exception as exc:
            if not is_unavailable(exc) or clock() + delay > deadline:
                raise
        sleep(delay)
        delay = min(delay * 2, max_delay)
