"""One int64 axis for all stores, and the business time measured along it.

`Timeline` lays every store's time range end to end, so that per-store lookups become single
`searchsorted` calls over whole columns; `BusinessMeasure` answers "is this instant in
business time" and "how much business time lies before it" on that axis.
"""

import numpy as np

_INT64 = np.iinfo(np.int64)
# Keys per edge from which sorted keys are merged with the edges rather than searched.
_MERGE_RATIO = 4


class Timeline:
    """Lay every store's time range end to end on one int64 axis.

    Store ``s`` owns ``[lo[s], hi[s]]``, mapped to ``[lo[s] + offset[s], hi[s] + offset[s]]``;
    the ranges follow each other in store order, so a sorted array of keys is sorted by
    store, then time. Callers only map instants inside their store's range.
    """

    def __init__(self, lo, hi):
        span = hi - lo + 1
        if span.sum(dtype=np.float64) >= _INT64.max / 2:
            raise ValueError("lo, hi: the stores' time ranges are too long to lay end to end")
        base = np.concatenate([[0], np.cumsum(span)[:-1]]).astype(np.int64)
        self.lo = lo
        self.offset = base - lo

    def key(self, store, instant_us):
        return instant_us + self.offset[store]

    def range_start(self, store):
        """The key of each store's ``lo``: where its range starts on the axis (the start
        of a store's first observation span, which reaches back to -inf)."""
        return self.lo[store] + self.offset[store]


class BusinessMeasure:
    """How much business time lies before a point of the `Timeline`, and what lies inside.

    The disjoint intervals become one sorted array of edges ``s0, e0, s1, e1, ...`` behind a
    sentinel; the number of edges at or before a key tells whether it is inside (odd) and
    which edge it follows, so each question is one `searchsorted`.
    """

    def __init__(self, start_key, end_key):
        edges = np.empty(2 * len(start_key) + 1, dtype=np.int64)
        edges[0] = _INT64.min
        edges[1::2], edges[2::2] = start_key, end_key
        self.edges = edges
        # Business time before each edge: after a start nothing is added until its end.
        length = end_key - start_key
        before = np.zeros(len(edges), dtype=np.int64)
        before[2::2] = np.cumsum(length)
        before[1::2] = before[0:-1:2]
        self.before = before

    def _edge(self, key):
        """Index of the last edge at or before each key (the sentinel at least).

        Many sorted keys (a chunk's polls) are merged with the edges instead: each edge is
        placed among the keys, and a running count of the edges placed so far answers every
        key. That is one search per edge, not per key, and twice as fast on a chunk's polls.
        """
        if len(key) >= _MERGE_RATIO * len(self.edges) and np.all(key[1:] >= key[:-1]):
            placed = np.searchsorted(key, self.edges, side="left")
            return np.cumsum(np.bincount(placed, minlength=len(key) + 1)[:len(key)]) - 1
        return np.searchsorted(self.edges, key, side="right") - 1

    def contains(self, key):
        """True where `key` lies in an interval; intervals hold their start, not their end."""
        return (self._edge(key) & 1).astype(bool)

    def up_to(self, key):
        """Business time in ``(-inf, key)`` [µs]; differences within one store are exact."""
        edge = self._edge(key)
        inside = (edge & 1).astype(bool)
        return self.before[edge] + np.where(inside, key - self.edges[edge], 0)
