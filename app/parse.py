"""Turn one CSV stream into valid rows plus rejected rows (file, line, reason).

Every data line of a file ends up in exactly one of the two: `parse_*` functions never drop a
row silently. Canonical column names are applied first, as the file may use aliases and any
column order.
"""

import csv
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from flask import current_app, has_app_context

from .inputstream import DEFAULT_MAX_LINE_BYTES, CheckedStream
from .sources import IngestError

# Lower-cased header name -> canonical column name.
COLUMN_ALIASES = {
    "store_id": "store_id",
    "timestamp_utc": "timestamp_utc",
    "status": "status",
    "dayofweek": "day_of_week",
    "day": "day_of_week",
    "start_time_local": "start_time_local",
    "end_time_local": "end_time_local",
    "timezone_str": "timezone_str",
}
REQUIRED_COLUMNS = {
    "status": ("store_id", "timestamp_utc", "status"),
    "hours": ("store_id", "day_of_week", "start_time_local", "end_time_local"),
    "timezone": ("store_id", "timezone_str"),
}
_STATUS_VALUES = {"active": True, "inactive": False}
_TIME_PATTERN = r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$"
# About two million polls per block: big enough for speed, small enough for memory.
BLOCK_BYTES = 64 << 20


@dataclass
class Parsed:
    """Valid rows of a file or block (with their `line`), its rejections, and the rows read."""

    rows: pd.DataFrame
    rejected: pd.DataFrame
    read: int


def read_batches(stream, name, kind):
    """Read a CSV stream block by block as text columns named canonically.

    Yields ``(frame, rejected)`` per block: `frame` holds the required columns and each
    row's `line`; rows with the wrong number of fields are in `rejected`. Memory stays
    bounded by the block size, whatever the size of the file. Raises `IngestError` when the
    file is not CSV or lacks a required column.
    """
    stream = CheckedStream(stream, name, max_line_bytes())
    placeholders, keep = _columns(stream, name, kind)
    bad_lines, reasons = [], []

    def on_invalid_row(row):
        # `number` counts lines after the header we consumed, so line = number + 1.
        bad_lines.append(row.number + 1)
        reasons.append(f"expected {row.expected_columns} fields, found {row.actual_columns}")
        return "skip"

    good_before, reported = 0, 0
    for batch in _blocks(stream, placeholders, on_invalid_row, name):
        frame = batch.select(list(keep)).rename_columns(list(keep.values())).to_pandas()
        frame["line"] = _good_row_lines(good_before, len(frame), bad_lines)
        good_before += len(frame)
        # The reader may have met bad rows of blocks it has not handed out yet; each bad row
        # is reported once, with the block during which it was met.
        rejected = _rejections(name, bad_lines[reported:], reasons[reported:])
        reported = len(bad_lines)
        yield frame, rejected


def _columns(stream, name, kind):
    """Read the header: placeholder names for all columns, and which to keep as what."""
    header = _read_header(stream, name)
    canonical = [COLUMN_ALIASES.get(column.strip().lower(), column) for column in header]
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in canonical]
    if missing:
        raise IngestError(f"{name}: missing required column(s) {', '.join(missing)} "
                          f"(found: {', '.join(header) or 'nothing'})")
    placeholders = [f"c{i}" for i in range(len(header))]
    return placeholders, {placeholders[canonical.index(c)]: c for c in REQUIRED_COLUMNS[kind]}


def _blocks(stream, placeholders, on_invalid_row, name):
    """The data lines after the header as Arrow record batches, every column as text."""
    if not stream.peek(1):  # a header and nothing else
        yield pa.record_batch({p: pa.array([], pa.string()) for p in placeholders})
        return
    reader = None
    try:
        reader = pacsv.open_csv(
            stream,
            # Line numbers of bad rows are only known when reading on one thread.
            read_options=pacsv.ReadOptions(column_names=placeholders, use_threads=False,
                                           block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row,
                                             ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={p: pa.string() for p in placeholders},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        yield from reader
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        reason = _short(str(exc).splitlines()[0])
        raise IngestError(f"{name}: not a readable CSV file ({reason})") from None
    finally:
        # Arrow reads ahead on its own thread; it must be out of our stream before we leave
        # (a failed or abandoned read would otherwise let it run into interpreter exit).
        stream.stop()
        if reader is not None:
            reader.close()


def _read_header(stream, name):
    first = stream.readline()  # at most MAX_LINE_BYTES: `stream` refuses longer lines
    if b"\0" in first:
        raise IngestError(f"{name}: not a CSV file (it holds binary data)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(f"{name}: not a CSV file (its first line is not UTF-8 text)") from None
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise IngestError(f"{name}: not a readable CSV header ({_short(str(exc))})") from None


def max_line_bytes():
    """The line length limit: the app's `MAX_LINE_BYTES`, or the default outside an app."""
    return current_app.config["MAX_LINE_BYTES"] if has_app_context() else DEFAULT_MAX_LINE_BYTES


def _short(text, limit=200):
    """`text` cut to `limit` characters: messages quote input, which may be huge."""
    return text if len(text) <= limit else text[:limit] + "..."


def _good_row_lines(start, count, bad_lines):
    """Line numbers of good rows ``start .. start + count - 1``, given the bad rows' lines.

    Data starts on line 2. Good row ``i`` follows bad line ``b[j]`` when ``i`` is at least
    the number of good rows before it, ``b[j] - 2 - j``.
    """
    bad = np.sort(np.asarray(bad_lines, dtype=np.int64))
    good_before_bad = bad - 2 - np.arange(len(bad))
    index = np.arange(start, start + count, dtype=np.int64)
    return index + 2 + np.searchsorted(good_before_bad, index, side="right")


def _rejections(name, lines, reasons):
    return pd.DataFrame({"file": pd.Series(name, index=range(len(lines)), dtype=object),
                         "line": np.asarray(lines, dtype=np.int64),
                         "reason": pd.Series(reasons, dtype=object)})


def _split(name, frame, reason):
    """Split `frame` on `reason` (a text per row, empty when the row is fine)."""
    bad = reason.to_numpy(dtype=object) != ""
    rejected = _rejections(name, frame["line"].to_numpy()[bad], reason.to_numpy(dtype=object)[bad])
    return frame.loc[~bad].reset_index(drop=True), rejected


def _first_problem(index, checks):
    """Per row, the message of the first failing check, or "" when all pass.

    `checks` are ``(failed, message, value)`` in order of precedence; when `value` (a text
    column) is given, the offending value is quoted after the message. Messages are only
    built for the rows that fail.
    """
    reason = pd.Series("", index=index, dtype=object)
    decided = pd.Series(False, index=index)
    for failed, message, value in checks:
        hit = failed.fillna(True).astype(bool) & ~decided
        if hit.any():
            quoted = "" if value is None else " '" + value[hit].astype(str).str.slice(0, 100) + "'"
            reason[hit] = message + quoted
            decided |= hit
    return reason


def parse_status(name, frame):
    """``(valid, rejected)`` polls; valid ones have `store_id` (text), `timestamp_us` (UTC),
    `active` (bool) and `line`."""
    store_id = frame["store_id"].str.strip()
    text = frame["timestamp_utc"].str.strip()
    instant = pd.to_datetime(_without_utc_suffix(text), format="ISO8601", utc=True,
                             errors="coerce")
    active = frame["status"].str.strip().str.lower().map(_STATUS_VALUES)
    reason = _first_problem(frame.index, [
        (store_id == "", "empty store_id", None),
        (instant.isna(), "unparseable timestamp_utc", text),
        (active.isna(), "unknown status", frame["status"]),
    ])
    rows = pd.DataFrame({"store_id": store_id.astype(object), "line": frame["line"]})
    rows["timestamp_us"] = _micros(instant)
    rows["active"] = active.fillna(False).astype(bool)
    return _split(name, rows, reason)


def parse_hours(name, frame):
    """``(valid, rejected)`` hours rows; valid ones have `store_id`, `day_of_week`
    (0 = Monday), `start_local_s`, `end_local_s` and `line`."""
    store_id = frame["store_id"].str.strip()
    day_text = frame["day_of_week"].str.strip()
    day = pd.to_numeric(day_text.where(day_text.str.fullmatch(r"-?\d+"), None), errors="coerce")
    start = _seconds_of_day(frame["start_time_local"])
    end = _seconds_of_day(frame["end_time_local"])
    reason = _first_problem(frame.index, [
        (store_id == "", "empty store_id", None),
        (day.isna() | ~day.between(0, 6), "dayOfWeek not in 0-6:", day_text),
        (start.isna(), "unparseable start_time_local", frame["start_time_local"]),
        (end.isna(), "unparseable end_time_local", frame["end_time_local"]),
    ])
    rows = pd.DataFrame({"store_id": store_id.astype(object), "line": frame["line"],
                         "day_of_week": day.fillna(0).astype(np.int16),
                         "start_local_s": start.fillna(0).astype(np.int32),
                         "end_local_s": end.fillna(0).astype(np.int32)})
    return _split(name, rows, reason)


def parse_timezone(name, frame):
    """``(valid, rejected)`` zone rows; valid ones have `store_id`, `timezone_str` (kept as
    given, even when unknown) and `line`."""
    store_id = frame["store_id"].str.strip()
    reason = _first_problem(frame.index, [(store_id == "", "empty store_id", None)])
    rows = pd.DataFrame({"store_id": store_id.astype(object), "line": frame["line"],
                         "timezone_str": frame["timezone_str"].str.strip().astype(object)})
    return _split(name, rows, reason)


PARSERS = {"status": parse_status, "hours": parse_hours, "timezone": parse_timezone}


def check_columns(source):
    """Raise `IngestError` unless the file's header names every required column."""
    with source.open() as stream:
        _columns(CheckedStream(stream, source.name, max_line_bytes()), source.name,
                 source.kind)


def parse_batches(source, progress=None):
    """Read and validate one `SourceFile`, a `Parsed` per block of rows.

    `progress(fraction)`, when given, hears how much of the file has been read.
    """
    size = max(source.size, 1)
    with source.open() as stream:
        for frame, read_rejected in read_batches(stream, source.name, source.kind):
            rows, rejected = PARSERS[source.kind](source.name, frame)
            yield Parsed(rows, pd.concat([read_rejected, rejected], ignore_index=True),
                         len(frame) + len(read_rejected))
            if progress:
                progress(min(1.0, stream.tell() / size))


def parse_file(source):
    """Read and validate one `SourceFile` whole (for files that fit in memory)."""
    parts = list(parse_batches(source))
    return Parsed(pd.concat([p.rows for p in parts], ignore_index=True),
                  pd.concat([p.rejected for p in parts], ignore_index=True),
                  sum(p.read for p in parts))


def _without_utc_suffix(text):
    """Drop a trailing " UTC" (any case). Arrow runs the pattern in C++; pandas would call
    Python's `re` once per row for it."""
    stripped = pc.replace_substring_regex(pa.array(text), pattern=r"(?i)\s*UTC$",
                                          replacement="")
    return pd.Series(stripped.to_pandas(), index=text.index)


def _micros(instant):
    """UTC instants as int64 microseconds since the epoch (0 where missing)."""
    naive = instant.dt.tz_localize(None).dt.as_unit("us")
    return naive.to_numpy(dtype="datetime64[us]").view(np.int64).copy()


def _seconds_of_day(text):
    """`HH:MM[:SS]` as seconds after midnight; NaN when malformed or out of range."""
    parts = text.str.strip().str.extract(_TIME_PATTERN).astype(float)
    hour, minute, second = parts[0], parts[1], parts[2].fillna(0)
    valid = (hour < 24) & (minute < 60) & (second < 60)
    return (hour * 3600 + minute * 60 + second).where(valid)
