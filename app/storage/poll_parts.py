"""Every stored poll as the columnar copy keeps it: in parts, so that the hourly feed adds a
part instead of rewriting every poll.

Each part is sorted by store, then instant, and a store's polls in a later part are all
later than its polls in the parts before: a store's polls in time order are its run in each
part, in part order, and no two parts hold the same store and instant. The polls of an
ingest that keep this (each one later than every stored poll of its store, as the hourly
feed's are) become a new part; any others are merged with the stored polls into one part.
Beyond MAX_PARTS the parts after the first are merged into one, and all parts once those
would hold more than half as many polls as the first: the whole set is rewritten about
once for each half of it that the hourly feed adds. Pure computation on Arrow tables
of ``store_pk`` (int64), ``timestamp_us`` (int64) and ``active`` (one byte).
"""

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from app.engine.inputs import run_rows
from app.storage.arrow_arrays import as_bool, as_int64
from app.storage.poll_order import distinct_sorted, last_of_each_key

# The whole set and a day of hourly ingests. More parts cost each reader a run per store
# and part (`app.engine.inputs.PollOrder`); merging the later parts costs a rewrite of
# theirs, merging all of them a rewrite of every poll.
MAX_PARTS = 25
# The latest instant of a store without polls.
NO_POLL = np.iinfo(np.int64).min


class Added(NamedTuple):
    """What `PollParts.with_polls` gives: the parts after, how many of the polls were new
    (not of a stored store and instant), and how many stores had no stored poll."""

    parts: "PollParts"
    new_polls: int
    new_stores: int


class PollParts:
    """Stored polls in parts (`parts`: Arrow tables, none empty); `kept`: how many leading
    parts are unchanged from the parts this value was made from (the copy links their
    files instead of writing them again)."""

    def __init__(self, parts=(), kept=0):
        self.parts = [part for part in parts if part.num_rows]
        self.kept = min(kept, len(self.parts))

    @classmethod
    def of(cls, polls):
        """`polls` as parts: a `PollParts` as it is, a table sorted by store and instant as
        one part."""
        return polls if isinstance(polls, PollParts) else cls([polls])

    @property
    def num_rows(self):
        return sum(part.num_rows for part in self.parts)

    def table(self):
        """Every poll as one table whose chunks are the parts (nothing copied)."""
        if not self.parts:
            return polls_table(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
        return pa.concat_tables(self.parts)

    def bounds(self):
        """The earliest and latest instant of all, or None without polls."""
        if not self.parts:
            return None
        instants = [columns(part)[1] for part in self.parts]
        return min(int(us.min()) for us in instants), max(int(us.max()) for us in instants)

    def latest_of(self, pks):
        """The latest stored instant of each store of `pks` (NO_POLL for a store without
        polls): from the last part that has the store."""
        pks = np.asarray(pks, dtype=np.int64)
        latest = np.full(len(pks), NO_POLL, dtype=np.int64)
        for part in self.parts:
            store, instant, _active = columns(part)
            last = np.searchsorted(store, pks, side="right") - 1
            found = (last >= 0) & (store[np.maximum(last, 0)] == pks)
            latest[found] = instant[last[found]]
        return latest

    def of_stores(self, pks):
        """The polls of the stores `pks` (sorted, distinct), sorted by store and instant
        (store_pk, timestamp_us and bool arrays): the whole set when `pks` is every store."""
        pks = np.asarray(pks, dtype=np.int64)
        taken = []
        for part in self.parts:
            store, instant, active = columns(part)
            low = np.searchsorted(store, pks, side="left")
            count = np.searchsorted(store, pks, side="right") - low
            rows = slice(None) if count.sum() == len(store) else run_rows(low, count)
            taken.append((store[rows], instant[rows], active[rows]))
        return in_store_order(taken)

    def latest_up_to(self, before):
        """Each store's latest poll at or before `before`: (store_pk, timestamp_us), sorted
        by store; stores without one are left out."""
        found = [_latest_up_to(*columns(part)[:2], before) for part in self.parts]
        store = np.concatenate([np.zeros(0, np.int64)] + [store for store, _ in found])
        instant = np.concatenate([np.zeros(0, np.int64)] + [instant for _, instant in found])
        if len(store) == 0:
            return store, instant
        # A store's latest is in the last part that has one: last of its run once grouped.
        order = np.argsort(store, kind="stable")
        store, instant = store[order], instant[order]
        last = np.flatnonzero(np.append(store[1:] != store[:-1], True))
        return store[last], instant[last]

    def with_polls(self, store_pk, timestamp_us, active):
        """These parts with polls added (sorted by store and instant, one row per store and
        instant; a row of a stored store and instant replaces its status), as `Added`.

        When every poll is later than its store's stored ones, they are a new part; at
        MAX_PARTS, the parts after the first are merged with them into one instead, or
        every part is once those would outgrow the first. Otherwise all are merged."""
        if len(store_pk) == 0:
            return Added(self, 0, 0)
        new = polls_table(store_pk, timestamp_us, active)
        distinct = np.flatnonzero(np.append(True, store_pk[1:] != store_pk[:-1]))
        latest_of_store = self.latest_of(store_pk[distinct])
        new_stores = int((latest_of_store == NO_POLL).sum())
        latest = np.repeat(latest_of_store, np.diff(np.append(distinct, len(store_pk))))
        if (timestamp_us > latest).all():
            if len(self.parts) < MAX_PARTS:
                return Added(PollParts(self.parts + [new], kept=self.kept),
                             len(store_pk), new_stores)
            first, later = self.parts[0], PollParts(self.parts[1:] + [new]).merged()
            if later.num_rows <= first.num_rows // 2:
                return Added(PollParts([first, later], kept=min(self.kept, 1)),
                             len(store_pk), new_stores)
            return Added(PollParts([PollParts([first, later]).merged()]), len(store_pk),
                         new_stores)
        merged, added = _merged(columns(self.merged()), store_pk, timestamp_us, active)
        return Added(PollParts([merged]), added, new_stores)

    def merged(self):
        """Every poll as one table sorted by store and instant: the later parts' polls
        interleaved, then inserted at the end of their store's run in the first part."""
        if len(self.parts) <= 1:
            return self.table()
        later = in_store_order([columns(part) for part in self.parts[1:]])
        return _merged(columns(self.parts[0]), *later)[0]


def polls_table(store_pk, timestamp_us, active):
    """A part's table from its columns (`active` as one byte, viewed when it is bool)."""
    active = np.asarray(active)
    return pa.table({"store_pk": np.asarray(store_pk, dtype=np.int64),
                     "timestamp_us": np.asarray(timestamp_us, dtype=np.int64),
                     "active": active.view(np.uint8) if active.dtype == bool else
                     active.astype(np.uint8, copy=False)})


def columns(part):
    """A part's columns as arrays: store_pk, timestamp_us (int64) and active (bool), without
    a copy where the table holds them as one chunk of those types."""
    return as_int64(part["store_pk"]), as_int64(part["timestamp_us"]), as_bool(part["active"])


def in_store_order(taken):
    """Columns (store, instant, active) taken from consecutive parts, each sorted by store
    and instant, as one set sorted by store and instant: each store's polls from each part
    placed after those from the parts before (which are earlier), without sorting."""
    taken = [part for part in taken if len(part[0])]
    if len(taken) <= 1:
        return taken[0] if taken else (np.zeros(0, np.int64), np.zeros(0, np.int64),
                                       np.zeros(0, bool))
    stores = [distinct_sorted(part[0]) for part in taken]
    every = np.unique(np.concatenate(stores))
    counts = []
    for part, distinct in zip(taken, stores):
        count = np.zeros(len(every), np.int64)
        count[np.searchsorted(every, distinct)] = np.diff(np.append(
            np.searchsorted(part[0], distinct), len(part[0])))
        counts.append(count)
    total = sum(counts)
    next_row = np.cumsum(total) - total  # where each store's polls go next
    merged = [np.empty(sum(len(part[0]) for part in taken), dtype)
              for dtype in (np.int64, np.int64, bool)]
    for part, count in zip(taken, counts):
        has = count > 0
        to = run_rows(next_row[has], count[has])
        for column, values in zip(merged, part):
            column[to] = values
        next_row += count
    return tuple(merged)


def _latest_up_to(store, instant, before):
    """Each store's latest poll at or before `before` in one part: its last poll, then a
    step back while that is later (few steps: the polls after `before` are the newest)."""
    if len(store) == 0:
        return store, instant
    last = np.flatnonzero(np.append(store[1:] != store[:-1], True))
    first = np.append(0, last[:-1] + 1)
    later = instant[last] > before
    while later.any():
        last[later] -= 1
        later &= last >= first
        later[later] = instant[last[later]] > before
    found = last >= first
    return store[last[found]], instant[last[found]]


def _merged(stored, store_pk, timestamp_us, active):
    """The `stored` columns (sorted by store and instant, without repeats) with these
    (sorted likewise) merged in, a row of the same store and instant replaced; and how many
    of these rows were new.

    One pass of copying, without sorting what is stored: each new row's place is found by
    binary search. A poll later than every stored poll of its store goes at the end of its
    store's run; only the others are looked up by store and instant.
    """
    stored_pk, stored_us, stored_active = stored
    new_count = len(store_pk)
    low = np.searchsorted(stored_pk, store_pk, side="left")
    place = np.searchsorted(stored_pk, store_pk, side="right")
    later = (place == low) | (timestamp_us > stored_us[np.maximum(place - 1, 0)])
    same = np.zeros(new_count, dtype=bool)
    other = np.flatnonzero(~later)
    if len(other):
        first = min(int(stored_us.min()), int(timestamp_us.min()))
        span = max(int(stored_us.max()), int(timestamp_us.max())) - first + 1
        if (max(int(stored_pk[-1]), int(store_pk.max())) + 1) * span >= 2**62:
            # Keys would not fit one int64 (polls spanning centuries): sort everything.
            merged = [np.concatenate(pair) for pair in (
                (stored_pk, store_pk), (stored_us, timestamp_us), (stored_active, active))]
            keep = last_of_each_key(merged[0], merged[1])
            return polls_table(*(column[keep] for column in merged)), \
                len(keep) - len(stored_pk)
        stored_key = stored_pk * span + (stored_us - first)
        key = store_pk[other] * span + (timestamp_us[other] - first)
        place[other] = np.searchsorted(stored_key, key, side="left")
        same[other] = stored_key[np.minimum(place[other], len(stored_key) - 1)] == key
    if same.any():  # the same store and instant again: the new status wins
        stored_active = stored_active.copy()
        stored_active[place[same]] = active[same]
    added = ~same
    at = place[added]
    return polls_table(np.insert(stored_pk, at, store_pk[added]),
                       np.insert(stored_us, at, timestamp_us[added]),
                       np.insert(stored_active, at, active[added])), int(added.sum())
