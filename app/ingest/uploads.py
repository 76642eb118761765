"""Receive an upload for ingest: stream it to a temporary file, never whole in memory, and
name that file so that `find_sources` knows what it holds.

Accepted: a multipart form with one file part (a zip, or a CSV whose name or `kind` says
which of the three files it is), or the raw body as `application/zip` or `text/csv`.
"""

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from flask import abort
from werkzeug.exceptions import RequestEntityTooLarge

from app.ingest.sources import FILE_ALIASES, kind_of_name

ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
CSV_TYPES = {"text/csv", "application/csv"}
COPY_BLOCK = 1 << 20


@contextmanager
def received(request, max_mb, kind=None, filename=None):
    """Save the request's upload in a temporary folder (removed afterwards).

    Yields ``(path, shown)``: the saved file and the name to show in messages. Ends the
    request with 400, 413 or 415 (JSON, through `abort`) when the upload is unusable.
    """
    limit = int(max_mb * (1 << 20))
    too_large = f"the upload is larger than MAX_UPLOAD_MB ({max_mb:g} MB)"
    # Checked before the body is read, and enforced while it is read (chunked uploads).
    if request.content_length is not None and request.content_length > limit:
        abort(413, too_large)
    request.max_content_length = limit
    with tempfile.TemporaryDirectory(prefix="store-monitor-upload-") as folder:
        try:
            path, shown = _save(request, Path(folder), kind, filename)
        except RequestEntityTooLarge:
            abort(413, too_large)
        if path.stat().st_size == 0:
            abort(400, f"{shown}: the upload is empty")
        yield path, shown


def _save(request, folder, kind, filename):
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        parts = [part for part in request.files.values()]
        if len(parts) != 1:
            abort(400, f"a multipart upload must hold exactly one file part (found {len(parts)})")
        part = parts[0]
        name = _safe_name(part.filename or filename)
        is_zip = part.mimetype in ZIP_TYPES or (name or "").lower().endswith(".zip")
        path = folder / ("upload.zip" if is_zip else _csv_name(kind, name))
        part.save(path, COPY_BLOCK)
        return path, name or path.name
    if mimetype in ZIP_TYPES:
        path = folder / "upload.zip"
    elif mimetype in CSV_TYPES:
        path = folder / _csv_name(kind, _safe_name(filename))
    else:
        abort(415, f"unsupported content type {mimetype or '(none)'!r}: send multipart/form-data "
                   "with one file, application/zip or text/csv")
    with open(path, "wb") as out:
        shutil.copyfileobj(request.stream, out, COPY_BLOCK)
    return path, _safe_name(filename) or path.name


def _csv_name(kind, name):
    """The canonical file name of the CSV's kind: from `kind`, else from its name."""
    kind = kind or kind_of_name(name)
    if kind is None:
        wanted = ", ".join(names[0] for names in FILE_ALIASES.values())
        abort(400, f"which file is {name or 'this CSV'}? Name it ({wanted}) or pass "
                   "?kind=status|hours|timezone")
    return FILE_ALIASES[kind][0]


def _safe_name(name):
    """The last part of a client-given file name, shortened; None when there is none."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    # Printable characters only: a NUL cannot be stored in PostgreSQL, and a name is shown.
    base = "".join(character for character in base if character.isprintable()).strip()
    return base[:120] or None
