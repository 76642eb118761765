"""A Complete report's CSV, ready to send: its bytes, their gzip and an ETag.

A Complete report never changes (retention may delete it later: its state says so first,
see `state.read`). Reading its CSV from the database for every download, and sending it
whole every time, made CSV polls cost two to four times a JSON poll. So each process keeps
the downloads it has served, up to `MAX_CACHED_BYTES` in all (the least recently sent go
first), compressed at most once each, and every download carries an ETag that a client can
send back in `If-None-Match` to be answered `304 Not Modified` without a body.
"""

import gzip
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from flask import current_app

from app.reports import state

# The CSV bytes (and their gzip, once asked for) a process keeps, in all.
MAX_CACHED_BYTES = 64 << 20
# Compression level of the gzip kept for clients that accept it: level 6 (zlib's default)
# makes a report's CSV about a fifth of its size, once per report and process.
GZIP_LEVEL = 6


@dataclass
class Download:
    """One Complete report's CSV as bytes, and its gzip once a client has asked for it."""

    report_id: str
    body: bytes
    _gzipped: bytes | None = field(default=None, repr=False)

    def etag(self, gzipped):
        """The entity tag of the plain or the gzipped body: one per report and encoding."""
        return f"{self.report_id}-gzip" if gzipped else self.report_id

    def gzipped(self):
        if self._gzipped is None:
            # mtime=0: the same bytes in every process, as the ETag promises.
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped

    @property
    def size(self):
        return len(self.body) + len(self._gzipped or b"")


def download(report_id):
    """The `Download` of a Complete report, None once its CSV is gone (expired)."""
    cache = current_app.extensions.setdefault("report_downloads", Downloads())
    found = cache.get(report_id)
    if found is not None:
        return found
    text = state.csv_text(report_id)
    if text is None:
        return None
    return cache.put(Download(report_id, text.encode()))


class Downloads:
    """A map of report id to `Download`, bounded in bytes, safe across threads."""

    def __init__(self, max_bytes=MAX_CACHED_BYTES):
        self.max_bytes = max_bytes
        self._items = OrderedDict()
        self._lock = threading.Lock()

    def get(self, report_id):
        with self._lock:
            found = self._items.get(report_id)
            if found is not None:
                self._items.move_to_end(report_id)
            return found

    def put(self, item):
        with self._lock:
            self._items[item.report_id] = item
            self._items.move_to_end(item.report_id)
            self._shrink()
        return item

    def compressed(self, item):
        """`item`'s gzip (made once), accounted in the cache's size."""
        body = item.gzipped()
        with self._lock:
            self._shrink()
        return body

    def _shrink(self):
        total = sum(item.size for item in self._items.values())
        # The newest stays even when alone it is larger than the bound: it is being sent.
        while total > self.max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            total -= dropped.size

    def clear(self):
        with self._lock:
            self._items.clear()


def compressed(item):
    """The gzip of `item`'s CSV (made once per process while the item is kept)."""
    return current_app.extensions.setdefault("report_downloads", Downloads()).compressed(item)
