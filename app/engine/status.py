"""Observations inside business time, and the stretch of time each one governs.

Works on one int64 axis shared by all stores (`Timeline`), so that per-store lookups become
single `searchsorted` calls over whole columns.
"""

import numpy as np

_INT64 = np.iinfo(np.int64)


class Timeline:
    """Lay every store's time range end to end on one int64 axis.

    Store ``s`` owns ``[base[s], base[s] + hi[s] - lo[s]]``; instants are clipped into the
    store's range ``[lo[s], hi[s]]`` before mapping. Keys of different stores never
    interleave, so a sorted array of keys is sorted by store, then time.
    """

    def __init__(self, lo, hi):
        span = hi - lo + 1
        if span.sum(dtype=np.float64) >= _INT64.max / 2:
            raise ValueError("lo, hi: the stores' time ranges are too long to lay end to end")
        self.lo, self.hi = lo, hi
        self.base = np.concatenate([[0], np.cumsum(span)[:-1]]).astype(np.int64)

    def key(self, store, instant_us):
        return self.base[store] + (np.clip(instant_us, self.lo[store], self.hi[store])
                                   - self.lo[store])


class BusinessMeasure:
    """How much business time lies before a point of the `Timeline`, and what lies inside."""

    def __init__(self, start_key, end_key):
        self.start, self.end = start_key, end_key
        self.before = np.concatenate([[0], np.cumsum(end_key - start_key)[:-1]]).astype(np.int64)

    def _interval(self, key):
        return np.searchsorted(self.start, key, side="right") - 1

    def contains(self, key):
        """True where `key` lies in an interval; intervals hold their start, not their end."""
        i = self._interval(key)
        safe = np.maximum(i, 0)
        return (i >= 0) & (key < self.end[safe])

    def up_to(self, key):
        """Business time in ``(-inf, key)`` [µs]; differences within one store are exact."""
        i = self._interval(key)
        safe = np.maximum(i, 0)
        inside = np.clip(key - self.start[safe], 0, self.end[safe] - self.start[safe])
        return np.where(i >= 0, self.before[safe] + inside, 0)


def governed_spans(store, instant_us):
    """The span each observation governs under nearest-observation interpolation.

    Parameters
    ----------
    store, instant_us : ndarray
        Observations sorted by store, then instant, without repeats.

    Returns
    -------
    start_us, end_us : ndarray
        Observation ``i`` governs ``[start, end)``: from the midpoint with the previous
        observation of its store to the midpoint with the next, so a tie goes to the later
        observation. The first and last of a store reach out to -inf and +inf (int64 limits).
    """
    same_as_next = store[1:] == store[:-1]
    midpoint = (instant_us[:-1] + instant_us[1:]) // 2
    start = np.full(len(store), _INT64.min, dtype=np.int64)
    end = np.full(len(store), _INT64.max, dtype=np.int64)
    start[1:] = np.where(same_as_next, midpoint, _INT64.min)
    end[:-1] = np.where(same_as_next, midpoint, _INT64.max)
    return start, end
