"""Find the input files in a zip archive, a folder or a single CSV file, and fingerprint them."""

import hashlib
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

# Kind of input -> accepted file names (lower case), first the canonical one.
FILE_ALIASES = {
    "status": ("store_status.csv", "status.csv"),
    "hours": ("business_hours.csv", "menu_hours.csv"),
    "timezone": ("store_timezone.csv", "timezones.csv", "timezone.csv"),
}
_KIND_OF_NAME = {name: kind for kind, names in FILE_ALIASES.items() for name in names}


def kind_of_name(name):
    """The kind of input a file name stands for ("status", "hours", "timezone"), or None."""
    return _KIND_OF_NAME.get(PurePosixPath(name or "").name.lower())


class IngestError(Exception):
    """A problem with a whole input: nothing of it is loaded."""


@dataclass(frozen=True)
class ZipLimits:
    """What a zip archive may hold, checked from its directory before any member is read,
    so that a zip bomb (a small file that inflates to gigabytes) is refused at once.

    Reading cannot exceed these either: Python's zipfile stops a member at its declared
    size and fails its CRC check when the data would inflate further.
    """

    max_total_bytes: int = 4 << 30  # all members together, uncompressed
    max_ratio: float = 100.0  # uncompressed / compressed, for members over `ratio_floor`
    max_members: int = 1000
    ratio_floor: int = 1 << 20  # small members may compress as well as they like

    @classmethod
    def from_config(cls, config):
        return cls(max_total_bytes=int(config["ZIP_MAX_UNCOMPRESSED_MB"] * (1 << 20)),
                   max_ratio=config["ZIP_MAX_RATIO"], max_members=config["ZIP_MAX_MEMBERS"])


def check_archive(archive, shown, limits):
    """Raise `IngestError` unless every member of `archive` is a plain file inside it and the
    sizes respect `limits`. Only the archive's directory is read."""
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise IngestError(f"{shown}: {len(members)} members in the archive; at most "
                          f"{limits.max_members} are accepted")
    total = 0
    for info in members:
        name = info.filename
        if _escapes(name):
            raise IngestError(f"{shown}: member {name[:200]!r} has a path outside the archive")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise IngestError(f"{shown}: member {name[:200]!r} is a link; only plain files "
                              "are accepted")
        if info.file_size > limits.ratio_floor \
                and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise IngestError(
                f"{shown}: member {name[:200]!r} would inflate {info.compress_size} bytes to "
                f"{info.file_size} (more than {limits.max_ratio:g} times): refused as a "
                "possible zip bomb")
        total += info.file_size
    if total > limits.max_total_bytes:
        raise IngestError(f"{shown}: {total} bytes uncompressed, more than the "
                          f"{limits.max_total_bytes} accepted")


def _escapes(name):
    """True for an absolute member path, a drive letter, or one that climbs out with '..'."""
    for path in (PurePosixPath(name), PureWindowsPath(name)):
        if path.is_absolute() or path.drive or path.anchor or ".." in path.parts:
            return True
    return False


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


def find_sources(path, shown=None, limits=ZipLimits()):
    """Map each kind found under `path` to its `SourceFile`.

    `shown` names the input in messages (default: the path). Raises `IngestError` when the
    path cannot be read, is a zip archive beyond `limits`, holds two files of one kind, or
    holds none of the three files.
    """
    path = Path(path)
    shown = shown or str(path)
    if not path.exists():
        raise IngestError(f"{shown}: no such file or folder")
    if path.is_dir():
        candidates = [(p.name, p, None) for p in sorted(path.iterdir()) if p.is_file()]
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                check_archive(archive, shown, limits)
                candidates = [(PurePosixPath(info.filename).name, path, info.filename)
                              for info in archive.infolist() if not info.is_dir()
                              and not info.filename.startswith("__MACOSX/")]
        except zipfile.BadZipFile as exc:
            raise IngestError(f"{shown}: not a readable zip archive ({exc})") from None
    elif path.name.lower() in _KIND_OF_NAME:
        candidates = [(path.name, path, None)]
    elif path.suffix.lower() == ".zip":
        raise IngestError(f"{shown}: not a readable zip archive (truncated or damaged?)")
    else:
        raise IngestError(f"{shown}: not a zip archive, a folder or one of the input files "
                          f"({', '.join(_KIND_OF_NAME)})")

    found = {}
    for name, file_path, member in candidates:
        kind = _KIND_OF_NAME.get(name.lower())
        if kind is None:
            continue
        if kind in found:
            raise IngestError(f"{shown}: both {found[kind].name} and {name} hold {kind} data; "
                              "keep one")
        found[kind] = SourceFile(kind, name, file_path, member)
    if not found:
        wanted = ", ".join(names[0] for names in FILE_ALIASES.values())
        raise IngestError(f"{shown}: none of the input files ({wanted}) found")
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
