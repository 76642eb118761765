"""The orders polls are kept in, as whole-column operations.

Ingest, the columnar copy and the engine keep polls by store, then instant (one run per
store); the `store_status` table keeps them by hour, then store, then instant (one run per
hour: `app.storage.models.StoreStatus`). Reading the table back needs the first order
again (`by_store`).
"""

import sys

import numpy as np

from app.storage.models import hour_of


def sorted_polls(store_pk, timestamp_us, active):
    """The polls in order of store, then instant, the last row of each (store, instant).

    Store, instant and status usually fit one int64 (unless the polls span years): sorting
    those values, without an index of positions, takes a tenth of the time of `np.argsort`
    (3.9 s for 25 M polls). When no two are for the same store and instant, nothing else
    is needed; otherwise `last_of_each_key` decides which rows win.
    """
    if len(store_pk):
        first = int(timestamp_us.min())
        span = int(timestamp_us.max()) - first + 1
        if (int(store_pk.max()) + 1) * span < 2**61:
            # In place, one int64 per poll at a time: 190 M polls are 1.5 GB a column.
            keys = store_pk.astype(np.int64)
            keys *= span
            keys += timestamp_us
            keys -= first
            keys *= 2
            keys += active
            keys.sort()
            # The status bit is the lowest bit, read from each key's lowest byte.
            sorted_active = keys.view(np.uint8)[_LOWEST_BYTE::8] & 1 == 1
            keys >>= 1  # the status bit off: repeats of a store and instant now compare equal
            if not (keys[1:] == keys[:-1]).any():
                instants = keys % span
                instants += first
                np.floor_divide(keys, span, out=keys)
                return keys, instants, sorted_active
    keep = last_of_each_key(store_pk, timestamp_us)
    return store_pk[keep], timestamp_us[keep], active[keep]


_LOWEST_BYTE = 0 if sys.byteorder == "little" else 7


def last_of_each_key(store_pk, timestamp_us):
    """Positions of the last row of each (store, instant), in order of store, then instant.

    One sort of a combined int64 key (it fits unless the polls span centuries; otherwise
    `np.lexsort`); within a run of equal keys the largest position is the row read last.
    An unstable sort and a maximum per run beat a stable sort threefold.
    """
    if len(store_pk) == 0:
        return np.zeros(0, dtype=np.int64)
    first = timestamp_us.min()
    span = int(timestamp_us.max() - first) + 1
    if (int(store_pk.max()) + 1) * span < 2**62:
        order = np.argsort(store_pk.astype(np.int64) * span + (timestamp_us - first))
    else:
        order = np.lexsort((timestamp_us, store_pk))
    store_pk, timestamp_us = store_pk[order], timestamp_us[order]
    new_key = np.ones(len(order), dtype=bool)
    new_key[1:] = (store_pk[1:] != store_pk[:-1]) | (timestamp_us[1:] != timestamp_us[:-1])
    return np.maximum.reduceat(order, np.flatnonzero(new_key))


def in_key_order(store_pk, timestamp_us, active):
    """The columns of `store_status` (hour, store_pk, timestamp_us, active) for polls
    sorted by store and instant, reordered by hour: a stable sort by hour alone keeps store
    and instant in order within each hour (a radix sort when the hours span under 7 years)."""
    # int64 columns, although the table's are 32 bits: the SQLite driver that writes the
    # staging files took 2.0 s for 2.5 M rows of int32 columns, 1.4 s of int64 ones.
    timestamp_us = np.asarray(timestamp_us, dtype=np.int64)
    hour = hour_of(timestamp_us)
    store_pk = np.asarray(store_pk, dtype=np.int64)
    first = int(hour.min())
    span = int(hour.max()) - first
    if span == 0:
        return [hour, store_pk, timestamp_us, active]
    hour -= first
    order = np.argsort(hour.astype(np.uint16) if span < 2**16 else hour, kind="stable")
    hour += first
    return [Reordered(column, order) for column in (hour, store_pk, timestamp_us,
                                                    np.asarray(active))]


class Reordered:
    """`column` in the order `order`, taken a slice at a time: at 182 M polls the four
    reordered columns would hold 4.5 GB at once, a part of them being enough to write."""

    def __init__(self, column, order):
        self.column, self.order = column, order

    def __len__(self):
        return len(self.order)

    def __getitem__(self, rows):
        return self.column[self.order[rows]]

    def __array__(self, dtype=None, copy=None):
        whole = self.column[self.order]
        return whole if dtype is None else whole.astype(dtype, copy=False)


def by_store(store_pk, timestamp_us, active):
    """Polls as the table holds them (no two of one store and instant), in any order, sorted
    by store, then instant."""
    store_pk = np.asarray(store_pk, dtype=np.int64)
    timestamp_us = np.asarray(timestamp_us, dtype=np.int64)
    active = np.asarray(active).astype(bool, copy=False)
    if len(store_pk) < 2 or _in_store_order(store_pk, timestamp_us):
        return store_pk, timestamp_us, active
    return sorted_polls(store_pk, timestamp_us, active)


def _in_store_order(store_pk, timestamp_us):
    step = np.diff(store_pk)
    return bool((step >= 0).all() and (np.diff(timestamp_us)[step == 0] > 0).all())


def distinct_sorted(values):
    """The distinct values of a sorted array, in order: one comparison per value, no sort."""
    values = np.asarray(values)
    if len(values) == 0:
        return values
    return values[np.flatnonzero(np.append(True, values[1:] != values[:-1]))]
