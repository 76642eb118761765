"""The engine's input frames turned into integer arrays: store codes, each store's polls in
time order, zones and hours rows per store code.

Stores become codes ``0..n-1`` (store ids sorted as text, or in the order the polls give
them: `StoreCodes`), so that every later step works on int arrays; only stores with polls
get a code.
"""

from functools import cached_property

import numpy as np
import pandas as pd

from .zones import DEFAULT_ZONE, resolve_zones


class StoreCodes:
    """The report's stores (those with polls) and each poll's code.

    Codes follow the store ids sorted as text (`by_id`), or the order in which the stores'
    polls first appear: then the polls of a range of codes are one slice of the input
    whenever the input holds each store's polls together (as the snapshot does), so chunks
    of stores cost no gathering at all.

    Columns may hold store ids as text or, as the snapshot gives them, as a categorical;
    categoricals sharing the polls' categories are mapped through their integer codes.
    The polls' runs of one store (`runs`) are found once, on the input's codes: the codes
    of all polls are the runs' codes repeated, which is cheaper than counting and mapping
    every poll, and `PollOrder` reuses them.
    """

    def __init__(self, store_id, by_id=True):
        if isinstance(store_id.dtype, pd.CategoricalDtype):
            self._categories = store_id.cat.categories
            input_codes = category_codes(store_id)
            known_ids = self._categories.to_numpy(dtype=object)
        else:
            self._categories = None
            input_codes, factorized = pd.factorize(store_id)
            known_ids = np.asarray(factorized, dtype=object)
        run_start, run_input_code = runs(input_codes)
        self.run_input_codes = run_input_code
        used, first_run = np.unique(run_input_code, return_index=True)
        distinct_ids = known_ids[used]
        order = np.argsort(distinct_ids.astype(str) if by_id else first_run, kind="stable")
        self.ids = distinct_ids[order]
        # int32 codes halve the memory traffic of the widest column after the instants.
        self._code_of = np.full(len(known_ids), -1, dtype=np.int32)
        self._code_of[used[order]] = np.arange(len(order))
        self.runs = run_start, self._code_of[run_input_code]
        self._n_polls = len(input_codes)

    @cached_property
    def polls(self):
        """Each poll's code (the runs' codes repeated); only an unsorted input needs it."""
        run_start, run_code = self.runs
        return np.repeat(run_code, np.diff(np.append(run_start, self._n_polls)))

    def of(self, store_id):
        """Codes of another column's store ids; -1 for stores without polls."""
        if self._categories is not None and isinstance(store_id.dtype, pd.CategoricalDtype) \
                and store_id.cat.categories.equals(self._categories):
            codes = category_codes(store_id)
            return np.where(codes >= 0, self._code_of[codes], -1)
        return pd.Index(self.ids).get_indexer(np.asarray(store_id, dtype=object))


def category_codes(column):
    """A categorical column's codes, as the array it holds (read-only): `.cat.codes` makes
    a Series of a copy (0.7 s and 730 MB for 183 M polls)."""
    return np.asarray(column.array.codes)


def run_rows(start, length):
    """The positions of runs given by their starts and lengths, run after run: the rows
    of each store's polls, or of each span's observations, without a Python loop."""
    return np.repeat(start - (np.cumsum(length) - length), length) + np.arange(length.sum())


def runs(codes):
    """Where each run of equal codes starts, and its code."""
    change = np.empty(len(codes), dtype=bool)
    change[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=change[1:])
    run_start = np.flatnonzero(change)
    return run_start, codes[run_start]


class PollOrder:
    """Which polls belong to a range of store codes, in time order.

    Databases usually return a store's polls together and in time order (SQLite in its
    primary-key order), and the columnar copy holds them in parts with a store's polls in
    a later part later (`app.storage.poll_parts`): then each store's polls are one run of
    the input, or a few runs in input order, and the rows of a range of stores are found
    from the runs alone. Otherwise one stable sort of a combined int64 key orders
    everything (ten times faster than `np.lexsort`; the key fits unless the polls span
    centuries).
    """

    def __init__(self, stores, instant):
        """`stores`: the polls' `StoreCodes`."""
        n_stores = len(stores.ids)
        run_start, run_store = stores.runs
        run_length = np.diff(np.append(run_start, len(instant)))
        self._order = None
        self._in_code_order = False
        grouped = _runs_by_store(run_store, stores.run_input_codes, n_stores)
        if _ascending_within_runs(instant, run_start) and \
                _ascending_across_runs(instant, run_start, run_length, run_store, grouped,
                                       n_stores):
            # The runs of each store, store after store in code order, each in input order.
            self._run_start, self._run_length = run_start[grouped], run_length[grouped]
            runs_of = np.bincount(run_store, minlength=n_stores)
            self._runs_before = np.concatenate([[0], np.cumsum(runs_of)])
            count = np.bincount(run_store, weights=run_length, minlength=n_stores
                                ).astype(np.int64)
            self._in_code_order = len(run_start) == n_stores and \
                bool(np.all(run_store[1:] > run_store[:-1]))
        else:
            store = stores.polls
            count = np.bincount(store, minlength=n_stores)
            first = instant.min()
            span = int(instant.max() - first) + 1
            if n_stores * span >= 2**62:
                self._order = np.lexsort((instant, store))
            else:
                self._order = np.argsort(store.astype(np.int64) * span + (instant - first),
                                         kind="stable")
        self.polls_before = np.concatenate([[0], np.cumsum(count)])

    def stores(self, first, last):
        """The store codes of `rows` (first .. last - 1), renumbered from 0: each code
        repeated as often as its store has polls, as the rows are sorted by store."""
        count = np.diff(self.polls_before[first:last + 1])
        return np.repeat(np.arange(last - first, dtype=np.int32), count)

    def rows(self, first, last):
        """Input positions of the polls of stores ``first .. last - 1``, sorted: a slice
        when the input holds those stores' polls in code order."""
        if self._order is not None:
            return self._order[self.polls_before[first]:self.polls_before[last]]
        if self._in_code_order:
            return slice(self.polls_before[first], self.polls_before[last])
        runs = slice(self._runs_before[first], self._runs_before[last])
        return run_rows(self._run_start[runs], self._run_length[runs])


# Inputs in more stretches than this (of runs of rising input codes) are grouped by a sort.
MAX_STRETCHES = 64


def _runs_by_store(run_store, run_input_code, n_stores):
    """The runs' positions grouped by store code, each store's in input order.

    With one run per store, a scatter. Parts of the columnar copy are stretches of runs in
    rising input codes (each store at most once in a stretch): a scatter per stretch, each
    run going to its store's next free place. Otherwise a stable sort."""
    if len(run_store) == n_stores:
        grouped = np.empty(n_stores, dtype=np.int64)
        grouped[run_store] = np.arange(n_stores)
        return grouped
    breaks = np.flatnonzero(run_input_code[1:] <= run_input_code[:-1]) + 1
    if len(breaks) >= MAX_STRETCHES:
        return np.argsort(run_store, kind="stable")
    runs_of = np.bincount(run_store, minlength=n_stores)
    free = np.cumsum(runs_of) - runs_of
    grouped = np.empty(len(run_store), dtype=np.int64)
    for low, high in zip([0, *breaks], [*breaks, len(run_store)]):
        stores = run_store[low:high]
        grouped[free[stores]] = np.arange(low, high)
        free[stores] += 1
    return grouped


def _ascending_within_runs(instant, run_start):
    """True when instants increase strictly within every run (a run may start lower)."""
    rising = instant[1:] > instant[:-1]
    rising[run_start[1:] - 1] = True
    return bool(rising.all())


def _ascending_across_runs(instant, run_start, run_length, run_store, grouped, n_stores):
    """True when each run of a store starts after the end of its run before (in input
    order); always so with one run per store."""
    if len(run_start) == n_stores:
        return True
    store = run_store[grouped]
    first = instant[run_start[grouped]]
    last = instant[run_start[grouped] + run_length[grouped] - 1]
    same = store[1:] == store[:-1]
    return not (same & (first[1:] <= last[:-1])).any()


def store_zones(stores, zones):
    """Each store's zone: its row's zone if known, else the default (with a warning).

    Returns ``(zone_codes, zone_list, warnings)``: per store code an index into
    `zone_list` (ZoneInfo objects), and a frame of ``store_id, message``.
    """
    store_ids = stores.ids
    names = np.full(len(store_ids), DEFAULT_ZONE, dtype=object)
    has_row = np.zeros(len(store_ids), dtype=bool)
    position = stores.of(zones["store_id"])
    known = position >= 0
    names[position[known]] = zones["timezone_str"].to_numpy(dtype=object)[known]
    has_row[position[known]] = True
    codes, zone_list, unknown = resolve_zones(names)
    flagged = unknown & has_row
    warnings = pd.DataFrame({
        "store_id": store_ids[flagged],
        "message": [f"unknown timezone {name!r}; using {DEFAULT_ZONE}"
                    for name in names[flagged]],
    })
    return codes, zone_list, warnings


def hours_arrays(stores, hours):
    """Hours rows of the report's stores, as arrays sorted by store code: a dict of
    ``store``, ``day_of_week``, ``start_s`` and ``end_s``."""
    position = stores.of(hours["store_id"])
    keep = np.flatnonzero(position >= 0)
    keep = keep[np.argsort(position[keep], kind="stable")]
    return {
        "store": position[keep].astype(np.int64),
        "day_of_week": hours["day_of_week"].to_numpy(dtype=np.int64)[keep],
        "start_s": hours["start_local_s"].to_numpy(dtype=np.int64)[keep],
        "end_s": hours["end_local_s"].to_numpy(dtype=np.int64)[keep],
    }
