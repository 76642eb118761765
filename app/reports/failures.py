"""What a client may learn about a failure: a short reason and a reference to the log.

Exception texts can hold SQL, parameters, host names and ports; they go to the log only,
on a line carrying the same reference, so that an operator can find them.
"""

import uuid

import sqlalchemy as sa

from app.cluster.compute import ClusterError


def new_reference():
    """A short random id that ties a client's message to the log line with the details."""
    return uuid.uuid4().hex[:12]


def public_reason(exc):
    """A few words on what went wrong, free of any detail of `exc` (unless `exc` is a
    `ClusterError`, whose message is written for clients)."""
    if isinstance(exc, ClusterError):
        return str(exc)
    if isinstance(exc, sa.exc.DBAPIError):
        return "the database failed or could not be reached"
    if isinstance(exc, MemoryError):
        return "the server ran out of memory"
    return "an internal error occurred"


def describe(exc):
    """``(message for the client, reference)`` for a failed report."""
    reference = new_reference()
    return f"{public_reason(exc)} (reference {reference})", reference
