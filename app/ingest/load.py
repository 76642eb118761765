"""Load input files into the database: all of them in one transaction, or nothing.

Polls accumulate (the same store and instant again is a duplicate, and the row loaded last
wins); a business-hours or timezone file replaces what it says about the stores it names.
"""

import logging
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from blinker import Namespace
from flask import current_app

from app.ingest import bulk
from app.ingest.inventory import kept_schedule_facts, schedule_facts
from app.ingest.parse import check_columns, parse_batches, parse_file, rejection_frame
from app.ingest.sources import IngestError, ZipLimits, find_sources, fingerprint
from app.storage import columnar, snapshot
from app.storage.arrow_arrays import as_int64
from app.storage.models import DataVersion, Ingest, IngestFile
from app.storage.poll_order import sorted_polls
from app.storage.poll_parts import PollParts
from app.storage.store_snapshot import kept_poll_bounds

log = logging.getLogger(__name__)

__all__ = ["IngestError", "FileCounts", "IngestSummary", "ingest"]

# How many rejected rows a summary carries for display; the database keeps them all.
SHOWN_REJECTIONS = 1000
# Sent with the app as sender inside every ingest's transaction, before it commits, with
# `conn`, `polls` (store_pk, timestamp_us, active arrays of the rows loaded), `rescheduled`
# (store_pks given new hours or a zone) and `stored_polls` (every poll in the database
# after this ingest, as `PollParts`, when ingest knows them without reading them back;
# else None) and `stored_schedules` (the hours and zones tables after this ingest, as
# Arrow tables keyed "hours" and "zones", when known without reading them back; else
# None): app.live keeps its state with it, in the same transaction. A receiver that
# raises fails the ingest.
polls_loaded = Namespace().signal("polls-loaded")


@dataclass
class FileCounts:
    kind: str
    name: str
    read: int
    loaded: int
    duplicate: int
    rejected: int


@dataclass
class IngestSummary:
    ingest_id: int | None
    source: str
    files: list[FileCounts] = field(default_factory=list)
    rejections: pd.DataFrame | None = None  # the first SHOWN_REJECTIONS rejected rows
    skipped: bool = False  # True when the same data had been loaded before

    @property
    def rejected(self):
        """How many rows were rejected in all."""
        return sum(f.rejected for f in self.files)


def ingest(path, progress=None, once=False, shown=None, limits=None, wait=True):
    """Load the files found at `path`; return what happened to every row.

    With `once`, data whose fingerprint was loaded before is skipped (`skipped` is set): the
    check runs under the ingest lock, so processes starting together load it only once.
    `progress(fraction, label)`, when given, is told how far the work has come. `shown`
    names the input in messages and in the ingest record (default: the path); `limits`
    bound a zip archive (default: the app's `ZIP_*` settings). Without `wait`, another
    ingest in progress (in any process) raises `bulk.IngestBusy`.
    Raises `IngestError` (and loads nothing) when an input as a whole is unusable.
    """
    shown = shown or str(path)
    try:
        return _ingest(path, progress=progress or (lambda fraction, label: None), once=once,
                       shown=shown, limits=limits or ZipLimits.from_config(current_app.config),
                       wait=wait)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        # A member whose data is damaged or cut short: found only while reading it. The
        # transaction has been rolled back.
        raise IngestError(f"{shown}: damaged zip archive ({exc})") from None


def _ingest(path, *, progress, once, shown, limits, wait):
    sources = find_sources(path, shown, limits)
    for source in sources.values():
        check_columns(source)  # fail before loading anything
    digest = fingerprint(sources)
    with bulk.writing_transaction(wait) as conn:
        if once:
            seen = conn.execute(sa.select(Ingest.id).where(Ingest.fingerprint == digest)).first()
            if seen is not None:
                log.info("%s already loaded (ingest %s); not loading it again", shown, seen.id)
                return IngestSummary(seen.id, shown, skipped=True)
        ingest_id = conn.execute(sa.insert(Ingest).values(source=shown, fingerprint=digest)
                                 ).inserted_primary_key[0]
        summary = IngestSummary(ingest_id, shown, rejections=rejection_frame())
        copies = columnar.for_current_app()
        load = _Load(conn, ingest_id, summary)
        has_polls = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM store_status)")).scalar()
        load.start_from(*_copy_before(conn, copies, has_polls))
        counted = _counts_before(conn, has_polls)
        facts = kept_schedule_facts(conn)
        load.know_schedules()
        sizes = {kind: max(source.size, 1) for kind, source in sources.items()}
        done = 0
        for kind in sorted(sources):
            source = sources[kind]

            # Progress by bytes: the status file is nearly all of the work.
            def advance(fraction, before=done, size=sizes[kind], name=source.name):
                progress((before + fraction * size) / sum(sizes.values()), f"loading {name}")

            counts = _LOADERS[kind](load, source, advance)
            # Every row read is loaded, a duplicate or rejected; anything else is a bug here.
            if counts.loaded + counts.duplicate + counts.rejected != counts.read:
                raise RuntimeError(f"{source.name}: row accounting does not add up: {counts}")
            summary.files.append(counts)
            conn.execute(sa.insert(IngestFile).values(ingest_id=ingest_id, **vars(counts)))
            done += sizes[kind]
        polls_loaded.send(current_app._get_current_object(), conn=conn,
                          stored_polls=load.previous_polls,
                          stored_schedules=load.schedules_after(), **load.changes())
        version = uuid.uuid4().hex
        conn.execute(sa.update(DataVersion).values(version=version, **load.counts_after(counted),
                                                   **load.schedule_facts_after(facts),
                                                   facts_version=version))
        copy, unchanged = _copy_after(load) if copies.enabled else (None, ())
        progress(1.0, "done")
    if copy is not None:  # committed: the copy of the new version can go in place
        copies.save(version, copy, linked=(load.previous_version, unchanged))
    log.info("ingest %s of %s: %s", ingest_id, shown,
             "; ".join(f"{f.name}: {f.read} read, {f.loaded} loaded, {f.duplicate} duplicate, "
                       f"{f.rejected} rejected" for f in summary.files))
    return summary


@dataclass
class _Load:
    """One ingest in progress: its transaction, its record, and the store keys known so far
    (kept from block to block, so the `store` table is read again only for new stores)."""

    conn: sa.Connection
    ingest_id: int
    summary: IngestSummary
    # The polls before this ingest, as `PollParts`, when known without reading them from
    # the database (from the copy before it); this ingest adds its own to them.
    previous_polls: PollParts | None = None
    # How many stores this ingest's polls brought that had none (known with those polls).
    first_polled: int = 0
    store_keys: pd.Series | None = None
    # The columnar copy of the data before this ingest (all its tables), and its version.
    previous: dict | None = None
    previous_version: str | None = None
    # What this ingest changed, for `polls_loaded`: blocks of polls, stores re-scheduled.
    new_polls: list = field(default_factory=list)
    rescheduled: list = field(default_factory=list)
    # The hours and zones tables before and after this ingest, where known without reading
    # them back (from the copy before it, or empty tables, and what it wrote).
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)

    def changes(self):
        """`polls` and `rescheduled` as `polls_loaded` sends them."""
        columns = list(zip(*self.new_polls)) or [[np.zeros(0, np.int64)]] * 2 + [[np.zeros(
            0, bool)]]
        return {"polls": tuple(np.concatenate(column) for column in columns),
                "rescheduled": np.concatenate([np.zeros(0, np.int64), *self.rescheduled])}

    def start_from(self, version, tables):
        """Start from the copy of `version` (`tables`, None for none): its polls are merged
        with this ingest's, and its store keys spare reading the `store` table."""
        self.previous_version, self.previous = version, tables
        if tables is None:
            return
        self.previous_polls = tables["polls"]
        if "stores" in tables:
            stores = tables["stores"]
            self.store_keys = pd.Series(
                as_int64(stores["id"]),
                index=pd.Index(stores["store_id"].to_numpy(zero_copy_only=False), dtype=object),
                dtype=np.int64)

    def know_schedules(self):
        """What the hours and zones tables hold before this ingest: the copy's, or none."""
        for name, table in (("hours", "business_hours"), ("zones", "store_timezone")):
            if self.previous is not None and name in self.previous:
                self.before[name] = self.previous[name]
            elif not self.conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {table})")
                                       ).scalar():
                self.before[name] = snapshot.empty_table(name)

    def schedules_after(self):
        """The hours and zones tables after this ingest ({"hours": ..., "zones": ...}),
        when both are known without reading them back; else None."""
        tables = {name: self.after.get(name, self.before.get(name)) for name in ("hours", "zones")}
        return None if None in tables.values() else tables

    def replaced(self, name, pks, rows):
        """This ingest replaced the rows of the stores `pks` of table `name` ("hours",
        "zones") by `rows` (a dict of columns): the table after it, when the one before is
        known."""
        before = self.after.get(name, self.before.get(name))
        if before is None:
            return
        kept = before.filter(pc.invert(pc.is_in(before["store_pk"], pa.array(pks, pa.int64()))))
        new = pa.table({column: pa.array(np.asarray(values), before.schema.field(column).type)
                        for column, values in rows.items()})
        self.after[name] = pa.concat_tables([kept.select(list(rows)).cast(new.schema), new])

    def counts_after(self, before):
        """`DataVersion.polls`, `.stores_with_polls`, `.first_poll_us` and `.latest_poll_us`
        after this ingest, from those `before` it (None where not known): the polls it
        added, the stores with a poll now that had none in the copy before it (None without
        that copy), and its polls' instants."""
        polls, stores, first_us, latest_us = before
        added = sum(counts.loaded for counts in self.summary.files if counts.kind == "status")
        if stores is not None and self.previous is not None:
            stores += self.first_polled
        else:
            stores = None
        # The earliest and latest poll: those before (none without polls) and these.
        known = polls == 0 or None not in (first_us, latest_us)
        every = ([] if polls == 0 else [(first_us, latest_us)]) + [
            (int(us.min()), int(us.max())) for _pks, us, _active in self.new_polls if len(us)]
        first_us, latest_us = (min(f for f, _ in every), max(last for _, last in every)) \
            if known and every else (None, None)
        return {"polls": None if polls is None else polls + added, "stores_with_polls": stores,
                "first_poll_us": first_us, "latest_poll_us": latest_us}

    def schedule_facts_after(self, before):
        """The schedule facts of `DataVersion` after this ingest, from those `before` it
        (None: not known). An ingest that brought only polls added stores without hours
        or a zone, if any; after business hours or zones, every store is probed again."""
        loaded = {counts.kind for counts in self.summary.files}
        if before is None or loaded & {"hours", "timezone"} or self.store_keys is None:
            return schedule_facts(self.conn)
        added = len(self.store_keys) - before["stores"]
        return {**before, "stores": len(self.store_keys),
                "stores_without_business_hours": before["stores_without_business_hours"] + added,
                "stores_without_timezone": before["stores_without_timezone"] + added}

    def with_store_pks(self, rows):
        """`rows` with the `store.id` of each `store_id`."""
        return rows.assign(store_pk=self.store_pks(rows["store_id"]))

    def store_pks(self, store_id):
        """The `store.id` of each store id (text), registering new stores."""
        self.store_keys = bulk.store_pks(self.conn, pd.unique(store_id), self.store_keys)
        keys = self.store_keys
        return keys.to_numpy()[keys.index.get_indexer(store_id)]

    def keep_rejections(self, parsed):
        """Store rejected rows; the summary keeps the first ones for display."""
        rejected, summary = parsed.rejected, self.summary
        bulk.insert_rows(self.conn, "ingest_rejection", ["ingest_id", "file", "line", "reason"],
                         [np.full(len(rejected), self.ingest_id), rejected["file"],
                          rejected["line"], rejected["reason"]])
        if len(summary.rejections) < SHOWN_REJECTIONS:
            summary.rejections = pd.concat([summary.rejections,
                                            rejected.head(SHOWN_REJECTIONS)], ignore_index=True)


def _load_status(load, source, progress):
    """Add the file's polls; the last row for a store and instant wins.

    The polls are gathered as narrow columns (17 bytes a poll), reduced to the last row of
    each store and instant, sorted into the table's key order and written in one bulk
    statement. Rows already present (from an earlier ingest) are duplicates too.
    """
    read = valid = rejected = 0
    codes, instants, statuses = (_Gathered(dtype) for dtype in (np.int32, np.int64, bool))
    store_ids = _StoreIds(codes)
    for parsed in parse_batches(source, progress):
        rows = parsed.rows
        store_ids.add(rows["store_id"].cat.categories, rows["store_id"].cat.codes.to_numpy())
        instants.add(rows["timestamp_us"].to_numpy())
        statuses.add(rows["active"].to_numpy())
        load.keep_rejections(parsed)
        read += parsed.read
        valid += len(rows)
        rejected += len(parsed.rejected)
    names, all_codes = store_ids.distinct()
    del store_ids, codes
    # Only names in use: the others may come from rejected rows (an empty id).
    used = np.flatnonzero(np.bincount(all_codes, minlength=len(names)))
    pk_of_code = np.zeros(len(names), np.int64)
    pk_of_code[used] = load.store_pks(pd.Series(
        names.take(pa.array(used)).to_numpy(zero_copy_only=False), dtype=object))
    store_pk = pk_of_code[all_codes]
    del all_codes, names, pk_of_code
    timestamp_us, active = instants.array(), statuses.array()
    del instants, statuses
    store_pk, timestamp_us, active = sorted_polls(store_pk, timestamp_us, active)
    new = None  # how many are new: known from the copy, else counted in the database
    if load.previous_polls is not None:
        load.previous_polls, new, load.first_polled = load.previous_polls.with_polls(
            store_pk, timestamp_us, active)
    loaded = bulk.add_polls(load.conn, store_pk, timestamp_us, active, new=new)
    load.new_polls.append((store_pk, timestamp_us, active))
    return FileCounts("status", source.name, read, loaded, valid - loaded, rejected)


class _StoreIds:
    """The store ids of a file's polls as codes into one list of distinct ids.

    Each block brings its own distinct ids (categories) and codes into them; the codes go
    into `codes` (a `_Gathered`) as they come, and every so often the blocks' ids are
    merged into the list, in one Arrow dictionary encoding, and their codes rewritten in
    place, so that a file's ids are held once, as Arrow text, not as one Python string per
    store per block (some 10,000 a block with a million stores polled hourly: 2 GB more
    per 30 s of reading). Merging when the ids waiting are as many as the list (or
    PENDING) hashes each id at most about twice.
    """

    PENDING = 1 << 23

    def __init__(self, codes):
        self.codes, self.names = codes, pa.array([], pa.string())
        self.waiting, self.waiting_count = [], 0  # (ids, first code, end) of each block

    def add(self, categories, codes):
        first = self.codes.size
        self.codes.add(codes)
        self.waiting.append((pa.array(categories.array, pa.string()), first, self.codes.size))
        self.waiting_count += len(categories)
        if self.waiting_count >= max(self.PENDING, len(self.names)):
            self._merge()

    def distinct(self):
        """The distinct ids (Arrow text) and every poll's code into them, in one array."""
        self._merge()
        return self.names, self.codes.array()

    def _merge(self):
        if not self.waiting:
            return
        encoded = pc.dictionary_encode(pa.concat_arrays(
            [self.names] + [ids for ids, _, _ in self.waiting]))
        # Codes follow first appearance: the list's ids keep theirs.
        code_of = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        at = len(self.names)
        for ids, first, end in self.waiting:
            self.codes.remap(first, end, code_of[at:at + len(ids)])
            at += len(ids)
        self.names = encoded.dictionary
        self.waiting, self.waiting_count = [], 0


class _Gathered:
    """One column of every block of a file, gathered in chunks of CHUNK values, each an
    allocation of its own: thousands of small per-block arrays, kept while blocks come and
    go on other threads, leave the allocator's heaps too fragmented to give memory back
    (55 bytes held per poll of 13)."""

    CHUNK = 1 << 24

    def __init__(self, dtype):
        self.dtype, self.chunks, self.size = dtype, [], 0

    def add(self, values):
        values = np.asarray(values)
        while len(values):
            used = self.size % self.CHUNK
            if used == 0:
                self.chunks.append(np.empty(self.CHUNK, self.dtype))
            taken = min(self.CHUNK - used, len(values))
            self.chunks[-1][used:used + taken] = values[:taken]
            self.size += taken
            values = values[taken:]

    def remap(self, first, end, mapping):
        """Values `first` to `end` (codes) replaced by what `mapping` gives for them."""
        while first < end:
            chunk, at = divmod(first, self.CHUNK)
            part = self.chunks[chunk][at:min(self.CHUNK, at + end - first)]
            part[:] = mapping[part]
            first += len(part)

    def array(self):
        """All values added, in one array (a chunk's pages untouched cost no memory)."""
        if not self.chunks:
            return np.zeros(0, self.dtype)
        last = self.size - (len(self.chunks) - 1) * self.CHUNK
        parts = self.chunks[:-1] + [self.chunks[-1][:last]]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _counts_before(conn, has_polls):
    """`DataVersion.polls`, `.stores_with_polls`, `.first_poll_us` and `.latest_poll_us`
    now: (0, 0, None, None) without polls. Bounds not kept (after a removal) are found
    now, before this ingest's polls go in (two index steps and an hour's polls each)."""
    if not has_polls:
        return 0, 0, None, None
    polls, stores = conn.execute(sa.select(DataVersion.polls, DataVersion.stores_with_polls)
                                 ).one()
    return (polls, stores, *kept_poll_bounds(conn))


def _copy_before(conn, copies, has_polls):
    """The data version and the columnar copy of the data in the database now, when known
    cheaply: an empty polls table when there are no polls (the other tables unknown), or
    the copy of this version; (version, None) otherwise."""
    version = snapshot.read_version(conn)
    if not has_polls:
        return version, {"polls": PollParts()}
    return version, copies.load(version)


def _copy_after(load):
    """The tables of the data this ingest leaves, for the columnar copy, and the names of
    those unchanged since the copy before it (linked, not written again); (None, ()) when
    the polls are not known without reading them all back.

    What the ingest knows is not read back: the stores from its store keys, the hours and
    zones from the copy before it (or empty tables) with the rows it wrote. Only what it
    does not know is read from the database.
    """
    if load.previous_polls is None:
        return None, ()
    previous = load.previous or {}
    loaded = {counts.kind for counts in load.summary.files}
    keys = load.store_keys
    known = {"stores": None if keys is None else pa.table({
        "id": pa.array(keys.to_numpy(dtype=np.int64), pa.int64()),
        "store_id": pa.array(keys.index.to_numpy(dtype=object), pa.string())}).sort_by("id")}
    for name in ("hours", "zones"):
        known[name] = load.after.get(name, load.before.get(name))
    changed = {"hours" if "hours" in loaded else None, "zones" if "timezone" in loaded else None,
               "stores" if keys is not None and ("stores" not in previous or
                                                 len(keys) != previous["stores"].num_rows)
               else None}
    tables, unchanged = {"polls": load.previous_polls}, []
    for name in ("hours", "stores", "zones"):
        if name in previous and name not in changed:
            tables[name] = previous[name]
            unchanged.append(name)
        elif known[name] is not None:
            tables[name] = known[name]
        else:
            tables.update(snapshot.read_tables(load.conn, (name,)))
    return tables, tuple(unchanged)


def _load_hours(load, source, progress):
    """Replace the hours of every store the file names; identical rows count once."""
    parsed = parse_file(source)
    rows = load.with_store_pks(parsed.rows)
    unique = rows.drop_duplicates(["store_pk", "day_of_week", "start_local_s", "end_local_s"])
    named = unique["store_pk"].unique().astype(np.int64)
    load.rescheduled.append(named)
    columns = ("store_pk", "day_of_week", "start_local_s", "end_local_s")
    bulk.replace_hours(load.conn, named, [unique[c] for c in columns])
    load.replaced("hours", named, {c: unique[c].to_numpy(dtype=np.int64) for c in columns})
    load.keep_rejections(parsed)
    progress(1.0)
    return FileCounts("hours", source.name, parsed.read, len(unique), len(rows) - len(unique),
                      len(parsed.rejected))


def _load_timezone(load, source, progress):
    """Set each named store's zone; with several rows for a store the last one counts."""
    parsed = parse_file(source)
    rows = load.with_store_pks(parsed.rows)
    unique = rows.drop_duplicates("store_pk", keep="last")
    named = unique["store_pk"].to_numpy(dtype=np.int64)
    load.rescheduled.append(named)
    bulk.upsert_timezones(load.conn, unique["store_pk"], unique["timezone_str"])
    load.replaced("zones", named, {"store_pk": named,
                                   "timezone_str": unique["timezone_str"].to_numpy(object)})
    load.keep_rejections(parsed)
    progress(1.0)
    return FileCounts("timezone", source.name, parsed.read, len(unique),
                      len(rows) - len(unique), len(parsed.rejected))


_LOADERS = {"status": _load_status, "hours": _load_hours, "timezone": _load_timezone}
