"""Instants as text: the one way the service writes an instant.

Instants are integer microseconds since the Unix epoch, in UTC. They are read from ISO 8601
text by `parse_instant` (an offset or a ``Z``; bare text is UTC). They are written as ISO 8601
in UTC with a ``Z``, exact to the microsecond: ``2023-01-25T18:13:22.479220Z``, and without a
fraction when it is zero: ``2023-01-25T18:00:00Z``. Local times add the UTC offset in force
instead of the ``Z``: ``2023-01-23T10:44:30-06:00``.
"""

from datetime import datetime, timedelta, timezone

import numpy as np

from app.engine.zones import utc_to_local

_EPOCH = datetime(1970, 1, 1)
_NO_FRACTION = ".000000"


def iso_utc(instants_us):
    """ISO 8601 UTC text of each instant of `instants_us` [µs since the epoch], as a list."""
    text = np.datetime_as_string(
        np.asarray(instants_us, dtype=np.int64).astype("datetime64[us]"), unit="us")
    return [t.removesuffix(_NO_FRACTION) + "Z" for t in text.tolist()]


def iso_instant(instant_us):
    """ISO 8601 UTC text of one instant [µs], or None for None (the same text as `iso_utc`,
    through `datetime`, which is quicker for one value)."""
    if instant_us is None:
        return None
    try:
        return (_EPOCH + timedelta(microseconds=int(instant_us))).isoformat() + "Z"
    except OverflowError:  # beyond datetime's years 1-9999
        return iso_utc([instant_us])[0]


def datetime_us(moment):
    """µs since the epoch of a naive UTC `datetime` (as the database keeps them), or None."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso_datetime(moment):
    """ISO 8601 UTC text of a naive UTC `datetime`, or None for None."""
    return iso_instant(datetime_us(moment))


def parse_instant(text):
    """µs since the epoch of an ISO 8601 instant: ``2023-01-25T18:00:00Z``, an offset such
    as ``+05:30``, a space for the ``T`` or a trailing `` UTC``; without an offset, UTC.

    Raises `ValueError` with a one-line message naming the text.
    """
    cleaned = str(text).strip().removesuffix(" UTC")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"{str(text)[:100]!r} is not an ISO 8601 instant (such as "
                         "2023-01-25T18:00:00Z)") from None
    return datetime_us(moment)


def iso_local(instants_us, zone):
    """ISO 8601 local text of each instant [µs] in `zone`, with the UTC offset in force."""
    instants = np.asarray(instants_us, dtype=np.int64)
    wall = utc_to_local(instants, zone)
    minutes = (wall - instants) // 60_000_000
    text = np.datetime_as_string(wall.astype("datetime64[us]"), unit="us")
    return [f"{t.removesuffix(_NO_FRACTION)}{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:"
            f"{abs(m) % 60:02d}" for t, m in zip(text.tolist(), minutes.tolist())]
