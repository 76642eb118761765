"""Store ranges for cluster reports: bounded polls per range, whatever the skew."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cluster.store_ranges import store_ranges


def test_even_stores_fill_ranges_up_to_the_limit():
    # 7 stores of 3 polls, at most 10 a range: 3 stores (9 polls) fit, a 4th would make 12.
    assert store_ranges([3] * 7, 10) == [(0, 3), (3, 6), (6, 7)]


def test_a_store_over_the_limit_gets_a_range_of_its_own():
    # Worked by hand with a limit of 5: [1, 2] = 3 (adding 9 would be 12), [9] alone,
    # [1, 1, 1] = 3 (adding 7 would be 10), [7] alone, [5] exactly the limit.
    assert store_ranges([1, 2, 9, 1, 1, 1, 7, 5], 5) == [
        (0, 2), (2, 3), (3, 6), (6, 7), (7, 8)]


def test_skewed_data_first_store_huge():
    assert store_ranges([100, 1, 1, 1], 2) == [(0, 1), (1, 3), (3, 4)]


def test_no_stores_no_ranges():
    assert store_ranges([], 10) == []


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        store_ranges([1, 2], 0)


@given(st.lists(st.integers(0, 50), max_size=60), st.integers(1, 80))
def test_ranges_cover_in_order_within_the_limit_and_are_fewest(counts, limit):
    ranges = store_ranges(counts, limit)
    # They cover every store once, in order.
    assert [i for first, last in ranges for i in range(first, last)] == list(range(len(counts)))
    sums = [sum(counts[first:last]) for first, last in ranges]
    for (first, last), total in zip(ranges, sums):
        # At most the limit, unless the range is a single store that alone exceeds it.
        assert total <= limit or (last - first == 1 and counts[first] > limit)
    # Greedy: no range could have taken the next store too, so none can be merged away.
    for (first, last), total in zip(ranges[:-1], sums[:-1]):
        assert total + counts[last] > limit
    # And no cut into consecutive ranges within the limit needs fewer ranges: the fewest is
    # found here by a simple dynamic program over prefixes.
    assert len(ranges) == _fewest_ranges(counts, limit)


def _fewest_ranges(counts, limit):
    best = [0] + [np.inf] * len(counts)
    for last in range(1, len(counts) + 1):
        for first in range(last):
            if last - first == 1 or sum(counts[first:last]) <= limit:
                best[last] = min(best[last], best[first] + 1)
    return best[len(counts)]
