"""The stretch of time each status observation governs (nearest-observation interpolation)."""

import numpy as np

_INT64 = np.iinfo(np.int64)


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
