"""Load input files into the database: all of them in one transaction, or nothing.

Polls accumulate (the same store and instant again is a duplicate, and the row loaded last
wins); a business-hours or timezone file replaces what it says about the stores it names.
"""

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa

from . import bulk
from .models import Ingest, IngestFile
from .parse import parse_file
from .sources import IngestError, find_sources, fingerprint

log = logging.getLogger(__name__)

__all__ = ["IngestError", "FileCounts", "IngestSummary", "ingest"]


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
    rejections: pd.DataFrame | None = None
    skipped: bool = False  # True when the same data had been loaded before

    @property
    def rejected(self):
        return sum(f.rejected for f in self.files)


def ingest(path, progress=None, once=False):
    """Load the files found at `path`; return what happened to every row.

    With `once`, data whose fingerprint was loaded before is skipped (`skipped` is set): the
    check runs under the ingest lock, so processes starting together load it only once.
    `progress(fraction, label)`, when given, is told how far the work has come.
    Raises `IngestError` (and loads nothing) when an input as a whole is unusable.
    """
    report = progress or (lambda fraction, label: None)
    sources = find_sources(path)
    digest = fingerprint(sources)
    with bulk.writing_transaction() as conn:
        if once:
            seen = conn.execute(sa.select(Ingest.id).where(Ingest.fingerprint == digest)).first()
            if seen is not None:
                log.info("%s already loaded (ingest %s); not loading it again", path, seen.id)
                return IngestSummary(seen.id, str(path), skipped=True)
        parsed = {}
        for step, kind in enumerate(sorted(sources)):
            report(0.4 * step / len(sources), f"reading {sources[kind].name}")
            parsed[kind] = parse_file(sources[kind])
        report(0.4, "loading")
        return _load(conn, str(path), digest, parsed, report)


def _load(conn, source, digest, parsed, report):
    ids = pd.unique(pd.concat([p.rows["store_id"] for p in parsed.values()]))
    store_pks = bulk.store_pks(conn, ids)
    ingest_id = conn.execute(sa.insert(Ingest).values(source=source, fingerprint=digest)
                             ).inserted_primary_key[0]
    loaders = {"status": _load_status, "hours": _load_hours, "timezone": _load_timezone}
    summary = IngestSummary(ingest_id, source)
    for step, kind in enumerate(sorted(parsed)):
        item = parsed[kind]
        positions = store_pks.index.get_indexer(item.rows["store_id"])
        rows = item.rows.assign(store_pk=store_pks.to_numpy()[positions])
        loaded, duplicate = loaders[kind](conn, rows,
                                          lambda f: report(0.4 + 0.55 * (step + f) / len(parsed),
                                                           f"loading {item.name}"))
        counts = FileCounts(kind, item.name, item.read, loaded, duplicate, len(item.rejected))
        # Every row read is loaded, a duplicate or rejected; anything else is a bug here.
        if counts.loaded + counts.duplicate + counts.rejected != counts.read:
            raise RuntimeError(f"{item.name}: row accounting does not add up: {counts}")
        summary.files.append(counts)
        conn.execute(sa.insert(IngestFile).values(
            ingest_id=ingest_id, kind=kind, name=item.name, read=counts.read,
            loaded=counts.loaded, duplicate=counts.duplicate, rejected=counts.rejected))
    summary.rejections = pd.concat([p.rejected for p in parsed.values()], ignore_index=True)
    bulk.insert_rows(conn, "ingest_rejection", ["ingest_id", "file", "line", "reason"],
                     [np.full(len(summary.rejections), ingest_id),
                      summary.rejections["file"], summary.rejections["line"],
                      summary.rejections["reason"]])
    report(1.0, "done")
    log.info("ingest %s of %s: %s", ingest_id, source,
             "; ".join(f"{f.name}: {f.read} read, {f.loaded} loaded, {f.duplicate} duplicate, "
                       f"{f.rejected} rejected" for f in summary.files))
    return summary


def _load_status(conn, rows, progress):
    """Upsert polls; the last row for a store and instant wins, earlier ones are duplicates."""
    unique = rows.drop_duplicates(["store_pk", "timestamp_us"], keep="last")
    unique = unique.sort_values(["store_pk", "timestamp_us"])
    inserted = bulk.upsert_status(conn, unique["store_pk"].to_numpy(),
                                  unique["timestamp_us"].to_numpy(),
                                  unique["active"].to_numpy(), progress)
    return inserted, len(rows) - inserted


def _load_hours(conn, rows, progress):
    """Replace the hours of every store the file names; identical rows count once."""
    unique = rows.drop_duplicates(["store_pk", "day_of_week", "start_local_s", "end_local_s"])
    bulk.replace_hours(conn, unique["store_pk"].unique(),
                       [unique[c] for c in ("store_pk", "day_of_week",
                                            "start_local_s", "end_local_s")])
    progress(1.0)
    return len(unique), len(rows) - len(unique)


def _load_timezone(conn, rows, progress):
    """Set each named store's zone; with several rows for a store the last one counts."""
    unique = rows.drop_duplicates("store_pk", keep="last")
    bulk.upsert_timezones(conn, unique["store_pk"], unique["timezone_str"])
    progress(1.0)
    return len(unique), len(rows) - len(unique)
