"""Find the input files in a zip archive, a folder or a single CSV file, and fingerprint them."""

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Kind of input -> accepted file names (lower case), first the canonical one.
FILE_ALIASES = {
    "status": ("store_status.csv", "status.csv"),
    "hours": ("business_hours.csv", "menu_hours.csv"),
    "timezone": ("store_timezone.csv", "timezones.csv", "timezone.csv"),
}
_KIND_OF_NAME = {name: kind for kind, names in FILE_ALIASES.items() for name in names}


class IngestError(Exception):
    """A problem with a whole input: nothing of it is loaded."""


@dataclass(frozen=True)
class SourceFile:
    kind: str
    name: str  # as shown to users: the member or file name
    _path: Path
    _member: str | None = None  # set when the file is inside a zip archive

    @property
    def size(self):
        """Size in bytes (uncompressed, for a member of an archive)."""
        if self._member is None:
            return self._path.stat().st_size
        with zipfile.ZipFile(self._path) as archive:
            return archive.getinfo(self._member).file_size

    def open(self):
        """A binary file object; the caller closes it."""
        if self._member is None:
            return open(self._path, "rb")
        archive = zipfile.ZipFile(self._path)
        stream = archive.open(self._member)
        # Closing the member must also close the archive it keeps open.
        original_close = stream.close

        def close():
            original_close()
            archive.close()

        stream.close = close
        return stream


def find_sources(path):
    """Map each kind found under `path` to its `SourceFile`.

    Raises `IngestError` when the path cannot be read, holds two files of one kind, or holds
    none of the three files.
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    if path.is_dir():
        candidates = [(p.name, p, None) for p in sorted(path.iterdir()) if p.is_file()]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            candidates = [(PurePosixPath(info.filename).name, path, info.filename)
                          for info in archive.infolist() if not info.is_dir()
                          and not info.filename.startswith("__MACOSX/")]
    elif path.name.lower() in _KIND_OF_NAME:
        candidates = [(path.name, path, None)]
    else:
        raise IngestError(f"{path}: not a zip archive, a folder or one of the input files "
                          f"({', '.join(_KIND_OF_NAME)})")

    found = {}
    for name, file_path, member in candidates:
        kind = _KIND_OF_NAME.get(name.lower())
        if kind is None:
            continue
        if kind in found:
            raise IngestError(f"{path}: both {found[kind].name} and {name} hold {kind} data; "
                              "keep one")
        found[kind] = SourceFile(kind, name, file_path, member)
    if not found:
        wanted = ", ".join(names[0] for names in FILE_ALIASES.values())
        raise IngestError(f"{path}: none of the input files ({wanted}) found")
    return found


def fingerprint(sources):
    """SHA-256 over the kinds, names and bytes of the files: the same data, the same value."""
    digest = hashlib.sha256()
    for kind in sorted(sources):
        source = sources[kind]
        digest.update(f"{kind}:{source.name.lower()}\0".encode())
        with source.open() as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
