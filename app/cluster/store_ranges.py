"""Split stores into consecutive ranges of bounded size, for reports computed in pieces."""

import numpy as np


def store_ranges(polls_per_store, max_polls):
    """Cut stores, kept in their order, into ranges holding at most `max_polls` polls each.

    A store with more than `max_polls` polls gets a range of its own: a store cannot be
    split, since its report needs all of its polls. Ranges are filled greedily, which gives
    the fewest ranges any cut into consecutive ranges can give.

    Parameters
    ----------
    polls_per_store : array of int
        Polls of each store, in the order the ranges must follow.
    max_polls : int
        The most polls a range may hold (at least 1).

    Returns
    -------
    list of (first, last)
        Half-open index ranges ``[first, last)`` into `polls_per_store`, covering it in
        order.
    """
    if max_polls < 1:
        raise ValueError("max_polls: must be at least 1")
    counts = np.asarray(polls_per_store, dtype=np.int64)
    if np.any(counts < 0):
        raise ValueError("polls_per_store: counts cannot be negative")
    through = np.cumsum(counts)  # polls of the stores up to and including each one
    ranges = []
    first = 0
    # One pass per range (not per store): each finds its end with one binary search.
    while first < len(counts):
        before = int(through[first - 1]) if first else 0
        last = int(np.searchsorted(through, before + max_polls, side="right"))
        last = max(last, first + 1)
        ranges.append((first, last))
        first = last
    return ranges
