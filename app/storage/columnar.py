"""The columnar copy of one data version: Arrow IPC files that reports memory-map.

Reading millions of polls out of a database takes seconds; mapping an uncompressed Arrow
IPC file takes milliseconds and shares the pages between processes. The copy lives in the
instance folder (so on PostgreSQL every host keeps its own), in a folder per database and,
inside it, a folder named by the data version (`data_version.version`, a new random value
for every committed ingest). A folder is complete or absent: it is written under a
temporary name and renamed into place. A report uses only the copy of the version it
reads in the same transaction as `now`, so a copy is never stale; delete the folder and
reports read the database again (and write a new copy).

The polls are in parts (`app.storage.poll_parts`): ``polls.arrow``, then ``polls.1.arrow``
and so on, as many as the file ``parts`` says (a copy missing one is unreadable, never
read short). A version that adds a part to the one before links that version's part files
and writes only its own, as it links the other tables when it did not change them. An old
version's folder is renamed before it is deleted, so that a reader finds it whole or not
at all.
"""

import hashlib
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import pyarrow as pa
from flask import current_app

from app.extensions import db
from app.storage.poll_parts import PollParts

log = logging.getLogger(__name__)

TABLES = ("polls", "hours", "stores", "zones")
# The tables other than the polls, one file each.
_WHOLE_TABLES = ("hours", "stores", "zones")
# Temporary folders left by a process that died while writing are removed after this.
STALE_TEMPORARY_SECONDS = 3600


def for_current_app():
    """The copies of the current app's database (disabled when `SNAPSHOT_COPY_DIR` is "")."""
    return Copies(database_folder())


def database_folder(kind=None):
    """Where files kept to save time go for the current app's database: a folder per
    database under `SNAPSHOT_COPY_DIR` (under its folder `kind`, if given); None when that
    setting is "" (keep none)."""
    root = current_app.config.get("SNAPSHOT_COPY_DIR")
    if root is None:
        root = Path(current_app.instance_path) / "snapshot-copies"
    if not root:
        return None
    url = db.engine.url.render_as_string(hide_password=False)
    return Path(root, *([kind] if kind else []), hashlib.sha256(url.encode()).hexdigest()[:16])


class Copies:
    """The copies of one database's data versions, in `folder` (None: keep none)."""

    def __init__(self, folder):
        self.folder = folder

    @property
    def enabled(self):
        return self.folder is not None

    def has(self, version):
        return self.enabled and version is not None and (self.folder / version).is_dir()

    def load(self, version):
        """The tables of `version`, memory-mapped (the polls as `PollParts`); None when
        there is no such copy."""
        if not self.has(version):
            return None
        folder = self.folder / version
        try:
            tables = {name: _read(folder / f"{name}.arrow") for name in _WHOLE_TABLES}
            parts = [_read(folder / name) for name in _poll_files(_count_parts(folder))]
            tables["polls"] = PollParts(parts, kept=len(parts))
            return tables
        except (OSError, ValueError, pa.ArrowInvalid):  # removed, or damaged: use the database
            log.warning("columnar copy %s unreadable; reading the database", version,
                        exc_info=True)
            return None

    def save(self, version, tables, linked=(None, ())):
        """Write the copy of `version` unless it exists; remove the other versions' copies.

        `tables["polls"]` is a table sorted by store and instant, or `PollParts`. `linked`
        is (an earlier version, names of tables unchanged since): those files, and the
        files of the parts the polls kept (`PollParts.kept`), are hard links to that
        version's (written again only if that fails), so that the hourly feed writes only
        its own part. Failing to write is logged, never raised: the copy only saves time.
        """
        if not self.enabled or version is None or self.has(version):
            return
        began = time.perf_counter()
        temporary = self.folder / f".{version}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            temporary.mkdir(parents=True)
            earlier, unchanged = linked
            polls = PollParts.of(tables["polls"])
            files = [(f"{name}.arrow", name, name in unchanged, tables[name])
                     for name in _WHOLE_TABLES]
            files += [(file, "polls", index < polls.kept, part)
                      for index, (file, part) in enumerate(zip(
                          _poll_files(max(len(polls.parts), 1)), polls.parts or [polls.table()]))]
            for file, name, unchanged_since, table in files:
                if unchanged_since and earlier is not None and \
                        self._link(earlier, temporary, file):
                    continue
                table = _normalized(name, table)
                with pa.OSFile(str(temporary / file), "wb") as sink, \
                        pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table)
            (temporary / _PARTS_FILE).write_text(str(max(len(polls.parts), 1)))
            try:
                os.rename(temporary, self.folder / version)
            except OSError:  # another process put the same version in place first
                shutil.rmtree(temporary, ignore_errors=True)
            else:
                log.debug("columnar copy of data version %s written in %.2f s", version,
                         time.perf_counter() - began)
            self._remove_others(version)
        except OSError:
            log.warning("could not write the columnar copy of %s", version, exc_info=True)
            shutil.rmtree(temporary, ignore_errors=True)

    def _link(self, earlier, folder, name):
        try:
            os.link(self.folder / earlier / name, folder / name)
            return True
        except OSError:  # gone meanwhile, or links not possible here: write it
            return False

    def _remove_others(self, version):
        """Drop other versions' copies (a report that mapped one keeps reading it) and
        temporary folders abandoned long ago."""
        for path in self.folder.iterdir():
            if path.name == version:
                continue
            if path.name.startswith("."):
                if time.time() - path.stat().st_mtime < STALE_TEMPORARY_SECONDS:
                    continue
            else:  # out of readers' sight at once, then deleted file by file
                removed = self.folder / f".{path.name}.removed.{uuid.uuid4().hex[:8]}"
                try:
                    path = path.rename(removed)
                except OSError:  # removed by another process meanwhile
                    continue
            shutil.rmtree(path, ignore_errors=True)


def _poll_files(count):
    """The file names of `count` poll parts, in order."""
    return ["polls.arrow"] + [f"polls.{index}.arrow" for index in range(1, count)]


# The file that says how many parts a copy's polls are in.
_PARTS_FILE = "parts"


def _count_parts(folder):
    """How many parts the copy in `folder` holds: its `parts` file says; a copy without
    one holds one (raises OSError if it holds more)."""
    listed = folder / _PARTS_FILE
    if listed.exists():
        return int(listed.read_text())
    if any(folder.glob("polls.*.arrow")):
        raise OSError(f"{folder}: poll parts without a list of them")
    return 1


def _read(path):
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def _normalized(name, table):
    """One chunk per column, and polls' `active` as one byte (viewed as bool when read)."""
    table = table.combine_chunks()
    if name == "polls" and table.schema.field("active").type != pa.uint8():
        index = table.schema.get_field_index("active")
        table = table.set_column(index, "active", table["active"].cast(pa.uint8()))
    return table
