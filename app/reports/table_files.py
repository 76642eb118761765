"""A Complete report's table as an Arrow file that every process memory-maps.

At a million stores, parsing a report's CSV takes 0.4 s and its headline figures 0.1 s
more, and each process of the service paid both on its first view of the dashboard. The
process that completes a report writes its table once, with those figures, and every
other view maps the file in milliseconds. A report's rows never change, so a file is never
stale. The files only save time: a missing or unreadable one is built again from the CSV,
and only the newest KEPT_FILES are kept.
"""

import json
import logging
import os
import re
import time
import uuid

import pyarrow as pa

from app.reports.table import COLUMNS, ReportTable
from app.storage import columnar
from app.storage.arrow_arrays import one_array

log = logging.getLogger(__name__)

KEPT_FILES = 8
_METADATA_KEY = b"store_monitor_figures"
_SAFE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def read(report_id, read_csv):
    """The table of a Complete report: from its file, else from `read_csv()` (its CSV
    text), written to a file for the next reader."""
    folder = columnar.database_folder("report-tables")
    path = _path(folder, report_id)
    if path is not None and path.exists():
        try:
            return _load(path)
        except Exception:  # damaged, or of another shape: the CSV answers, and is kept
            log.warning("report table %s unreadable; parsing its CSV", report_id,
                        exc_info=True)
    table = ReportTable.from_csv(read_csv())
    if path is not None:
        _save(path, table)
    return table


def prepare(report_id, csv_text):
    """Write the table of a report that just completed (`csv_text`: its CSV), so that no
    view parses it. Failing is logged, never raised."""
    try:
        path = _path(columnar.database_folder("report-tables"), report_id)
        if path is not None and not path.exists():
            _save(path, ReportTable.from_csv(csv_text))
    except Exception:  # only time is lost: the first view parses the CSV
        log.warning("could not prepare the table of report %s", report_id, exc_info=True)


def remove(report_ids):
    """Delete the table files of these reports (expired: their rows must go with their
    CSV). Failing is logged, never raised."""
    folder = columnar.database_folder("report-tables")
    for report_id in report_ids:
        path = _path(folder, report_id)
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.warning("could not delete the report table %s", path.name, exc_info=True)


def _path(folder, report_id):
    if folder is None or not _SAFE_ID.fullmatch(str(report_id)):
        return None
    return folder / f"{report_id}.arrow"


def _load(path):
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    kept = json.loads(table.schema.metadata[_METADATA_KEY])
    # One array per column, viewed where the file holds it as one (a table without rows
    # has none).
    columns = {name: one_array(table.column(name)).to_numpy() for name in COLUMNS[1:]}
    return ReportTable(one_array(table.column("store_id")), columns,
                       once=ReportTable.once_from_kept(kept))


def _save(path, table):
    """Write `table` with its figures (under a temporary name, then renamed into place),
    and remove all but the newest KEPT_FILES files. Failing is logged, never raised."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrow = pa.table({"store_id": table.store_id,
                          **{name: table.columns[name] for name in COLUMNS[1:]}})
        arrow = arrow.replace_schema_metadata(
            {_METADATA_KEY: json.dumps(table.figures_kept()).encode()})
        with pa.OSFile(str(temporary), "wb") as sink, \
                pa.ipc.new_file(sink, arrow.schema) as writer:
            writer.write_table(arrow.combine_chunks())
        os.replace(temporary, path)
        _remove_old(path.parent)
    except OSError:
        log.warning("could not write the report table %s", path.name, exc_info=True)
        temporary.unlink(missing_ok=True)


def _remove_old(folder):
    """Keep the newest KEPT_FILES tables; drop temporary files a process that died while
    writing left (after STALE_TEMPORARY_SECONDS)."""
    def modified(path):
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another process
            return None

    dated = [(modified(path), path) for path in folder.glob("*.arrow")]
    dated = sorted(((when, path) for when, path in dated if when is not None), reverse=True)
    for _when, old in dated[KEPT_FILES:]:
        old.unlink(missing_ok=True)
    for temporary in folder.glob(".*"):
        when = modified(temporary)
        if when is not None and time.time() - when > columnar.STALE_TEMPORARY_SECONDS:
            temporary.unlink(missing_ok=True)
