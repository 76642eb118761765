"""Turn one CSV stream into valid rows plus rejected rows (file, line, reason).

Every data line of a file ends up in exactly one of the two: `parse_*` functions never drop a
row silently. Canonical column names are applied first, as the file may use aliases and any
column order.
"""

import csv
import functools
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from flask import current_app, has_app_context

from app.ingest.inputstream import DEFAULT_MAX_LINE_BYTES, CheckedStream
from app.ingest.sources import IngestError

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
_TIME_OF_DAY = r"^(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?$"
# What Arrow parses as pandas would: years 1900-2099, a valid clock time, at most
# microseconds, and then nothing, `Z` or ` UTC` (any case).
_PLAIN_INSTANT = (r"^(?:19|20)\d\d-\d\d-\d\d[T ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
                  r"(?:\.\d{1,6})?(?:Z|[ \t]*(?i:UTC))?$")
# About a million polls per block: big enough for speed, small enough for memory with two
# blocks in flight (see `parse_batches`).
BLOCK_BYTES = 32 << 20
# Threads that validate blocks (see `parse_batches`).
PARSE_THREADS = 2
# How much of an offending value a rejection message quotes.
QUOTED_CHARS = 100
# Polls later than the clock plus this many minutes are rejected, outside an app too.
DEFAULT_MAX_FUTURE_MINUTES = 60.0
# A NUL character: PostgreSQL's text cannot hold it, so no file may bring one, on any database.
NUL = "\x00"


@dataclass
class Parsed:
    """Valid rows of a file or block (with their `line`), its rejections, and the rows read."""

    rows: pd.DataFrame
    rejected: pd.DataFrame
    read: int


def read_batches(stream, name, kind):
    """Read a CSV stream block by block as text columns named canonically.

    Yields ``(table, rejected)`` per block: `table` is an Arrow table of the required columns
    and each row's `line`; rows with the wrong number of fields are in `rejected`. Memory
    stays bounded by the block size, whatever the size of the file. Raises `IngestError` when
    the file is not CSV or lacks a required column.
    """
    stream = CheckedStream(stream, name, max_line_bytes())
    placeholders, keep = _columns(stream, name, kind)
    bad_lines, reasons = [], []

    def on_invalid_row(row):
        # `number` counts lines after the header we consumed, so line = number + 1.
        bad_lines.append(row.number + 1)
        reasons.append(f"expected {row.expected_columns} fields, found {row.actual_columns}")
        return "skip"

    good_before, reported, blocks = 0, 0, 0
    for batch in _blocks(stream, placeholders, on_invalid_row, name):
        lines = _good_row_lines(good_before, batch.num_rows, bad_lines)
        table = pa.Table.from_batches([batch.select(list(keep))]).rename_columns(
            list(keep.values())).append_column("line", pa.array(lines))
        good_before += batch.num_rows
        # The reader may have met bad rows of blocks it has not handed out yet; each bad row
        # is reported once, with the block during which it was met.
        rejected = rejection_frame(name, bad_lines[reported:], reasons[reported:])
        reported = len(bad_lines)
        blocks += 1
        yield table, rejected
    if not blocks or reported < len(bad_lines):
        # Only bad rows (the reader hands out no block then), or bad rows after the last
        # block: an empty block carries their rejections.
        empty = pa.table({**{c: pa.array([], pa.string()) for c in keep.values()},
                          "line": pa.array([], pa.int64())})
        yield empty, rejection_frame(name, bad_lines[reported:], reasons[reported:])


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


def rejection_frame(name="", lines=(), reasons=()):
    """Rejected rows as a frame (file, line, reason); with no arguments, an empty one."""
    return pd.DataFrame({"file": pd.Series(name, index=range(len(lines)), dtype=object),
                         "line": np.asarray(lines, dtype=np.int64),
                         "reason": pd.Series(reasons, dtype=object)})


def _split(name, frame, failure):
    """Split `frame` into its valid rows and the rejections that `failure` describes."""
    bad, rows, reasons = failure
    rejected = rejection_frame(name, frame["line"].to_numpy()[rows], reasons)
    return frame.loc[~bad].reset_index(drop=True), rejected


def _first_problem(checks):
    """Which rows fail, and why: ``(bad, rows, reasons)``.

    `checks` are ``(failed, message, value)`` in order of precedence, `failed` a boolean
    array; when `value` (a text column, pandas or Arrow) is given, the offending value is
    quoted after the message. `bad` marks the failing rows, `rows` lists them in order and
    `reasons` gives each one the message of its first failing check. Messages are only built
    for the rows that fail.
    """
    bad = np.zeros(len(checks[0][0]), dtype=bool)
    rows, reasons = [], []
    for failed, message, value in checks:
        hit = np.flatnonzero(np.asarray(failed, dtype=bool) & ~bad)
        if len(hit):
            bad[hit] = True
            rows.append(hit)
            reasons.append(np.full(len(hit), message, dtype=object) if value is None
                           else message + " '" + _texts(value, hit) + "'")
    if not rows:
        return bad, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    rows, reasons = np.concatenate(rows), np.concatenate(reasons)
    order = np.argsort(rows, kind="stable")
    return bad, rows[order], reasons[order]


def _texts(column, rows):
    """The values of a text column at positions `rows`, as an object array of str."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        texts = column.take(pa.array(rows)).to_pylist()
    else:
        texts = np.asarray(column, dtype=object)[rows].astype(str)
    # A message quotes at most QUOTED_CHARS of the value, NUL characters written as \0.
    return np.asarray([text[:QUOTED_CHARS].replace(NUL, "\\0") for text in texts],
                      dtype=object)


def _has_nul(column):
    """Which values of a text column (pandas or Arrow) hold a NUL character."""
    if isinstance(column, pd.Series):
        return column.str.contains(NUL, regex=False).to_numpy(dtype=bool)
    return _bools(pc.match_substring(column, NUL))


def latest_poll_allowed_us():
    """The latest instant [µs] a poll may have: the clock plus `MAX_FUTURE_MINUTES` (one
    far-future poll would move every report's `now` and break them all)."""
    minutes = current_app.config["MAX_FUTURE_MINUTES"] if has_app_context() \
        else DEFAULT_MAX_FUTURE_MINUTES
    return int((time.time() + minutes * 60) * 1e6), minutes


def parse_status(name, table, latest=None):
    """``(valid, rejected)`` polls; valid ones have `store_id` (a categorical of text),
    `timestamp_us` (UTC), `active` (bool) and `line`. A poll after `latest` (``(instant
    [µs], minutes)`` of `latest_poll_allowed_us`, computed now when not given) is rejected.

    Works on Arrow columns, without a Python object per row. Store ids and statuses repeat,
    so each distinct text is trimmed (and lower-cased) once, through a dictionary encoding.
    """
    store_id = _trimmed_dictionary(table["store_id"])
    text = pc.utf8_trim_whitespace(table["timestamp_utc"])
    instant, parsed = _instants(text)
    status = _trimmed_dictionary(table["status"])
    status_name = pc.utf8_lower(status.dictionary).to_numpy(zero_copy_only=False)
    status_code = status.indices.to_numpy(zero_copy_only=False)
    id_code = store_id.indices.to_numpy(zero_copy_only=False)
    latest_us, minutes = latest or latest_poll_allowed_us()
    failure = _first_problem([
        ((store_id.dictionary.to_numpy(zero_copy_only=False) == "")[id_code],
         "empty store_id", None),
        (_has_nul(store_id.dictionary)[id_code], "NUL character in store_id", None),
        (~parsed, "unparseable timestamp_utc", text),
        (parsed & (instant > latest_us),
         f"timestamp_utc later than the server's clock plus MAX_FUTURE_MINUTES ({minutes:g})",
         text),
        (~np.isin(status_name, ["active", "inactive"])[status_code], "unknown status",
         table["status"]),
    ])
    bad, rows, reasons = failure
    good = ~bad
    valid = pd.DataFrame({
        "store_id": store_id.filter(pa.array(good)).to_pandas(),
        "timestamp_us": instant[good],
        "active": (status_name == "active")[status_code][good],
        "line": table["line"].to_numpy()[good],
    })
    return valid, rejection_frame(name, table["line"].to_numpy()[rows], reasons)


def _trimmed_dictionary(column):
    """A text column as a dictionary array whose distinct values have been trimmed of
    surrounding white space (values equal once trimmed share one entry)."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    trimmed = pc.dictionary_encode(pc.utf8_trim_whitespace(encoded.dictionary))
    indices = trimmed.indices.take(encoded.indices)
    return pa.DictionaryArray.from_arrays(indices, trimmed.dictionary)


def parse_hours(name, table):
    """``(valid, rejected)`` hours rows; valid ones have `store_id`, `day_of_week`
    (0 = Monday), `start_local_s`, `end_local_s` and `line`."""
    frame = table.to_pandas()
    store_id = frame["store_id"].str.strip()
    day_text = frame["day_of_week"].str.strip()
    day = pd.to_numeric(day_text.where(day_text.str.fullmatch(r"-?\d+"), None), errors="coerce")
    start = _seconds_of_day(table["start_time_local"])
    end = _seconds_of_day(table["end_time_local"])
    failure = _first_problem([
        ((store_id == "").to_numpy(), "empty store_id", None),
        (_has_nul(store_id), "NUL character in store_id", None),
        ((day.isna() | ~day.between(0, 6)).to_numpy(), "dayOfWeek not in 0-6:", day_text),
        (np.isnan(start), "unparseable start_time_local", frame["start_time_local"]),
        (np.isnan(end), "unparseable end_time_local", frame["end_time_local"]),
    ])
    rows = pd.DataFrame({"store_id": store_id.astype(object), "line": frame["line"],
                         "day_of_week": day.fillna(0).astype(np.int16),
                         "start_local_s": np.nan_to_num(start).astype(np.int32),
                         "end_local_s": np.nan_to_num(end).astype(np.int32)})
    return _split(name, rows, failure)


def parse_timezone(name, table):
    """``(valid, rejected)`` zone rows; valid ones have `store_id`, `timezone_str` (kept as
    given, even when unknown) and `line`."""
    frame = table.to_pandas()
    store_id = frame["store_id"].str.strip()
    zone = frame["timezone_str"].str.strip()
    failure = _first_problem([((store_id == "").to_numpy(), "empty store_id", None),
                              (_has_nul(store_id), "NUL character in store_id", None),
                              (_has_nul(zone), "NUL character in timezone_str", None)])
    rows = pd.DataFrame({"store_id": store_id.astype(object), "line": frame["line"],
                         "timezone_str": zone.astype(object)})
    return _split(name, rows, failure)


PARSERS = {"status": parse_status, "hours": parse_hours, "timezone": parse_timezone}


def check_columns(source):
    """Raise `IngestError` unless the file's header names every required column."""
    with source.open() as stream:
        _columns(CheckedStream(stream, source.name, max_line_bytes()), source.name,
                 source.kind)


def parse_batches(source, progress=None):
    """Read and validate one `SourceFile`, a `Parsed` per block of rows, in file order.

    Blocks are validated on PARSE_THREADS threads while the next one is read and the
    caller handles the one before: the steps spend most of their time in Arrow's kernels,
    which let go of the GIL. Validating is the longest step (0.7 s of CPU per million
    polls), so one thread for it left a core idle half the time. At most PARSE_THREADS + 1
    blocks are in flight. `progress(fraction)`, when given, hears how much of the file
    has been read.
    """
    size = max(source.size, 1)
    # Read in the app's context: the blocks are validated on threads without one.
    parse = PARSERS[source.kind] if source.kind != "status" else functools.partial(
        parse_status, latest=latest_poll_allowed_us())
    with source.open() as stream, ThreadPoolExecutor(PARSE_THREADS,
                                                     thread_name_prefix="parse") as pool:
        pending = deque()
        for table, read_rejected in read_batches(stream, source.name, source.kind):
            pending.append(pool.submit(_parse_block, parse, source.name, table,
                                       read_rejected))
            if len(pending) > PARSE_THREADS:
                yield pending.popleft().result()
            if progress:
                progress(min(1.0, stream.tell() / size))
        while pending:
            yield pending.popleft().result()


def _parse_block(parse, name, table, read_rejected):
    rows, rejected = parse(name, table)
    return Parsed(rows, pd.concat([read_rejected, rejected], ignore_index=True),
                  table.num_rows + len(read_rejected))


def parse_file(source):
    """Read and validate one `SourceFile` whole (for files that fit in memory)."""
    parts = list(parse_batches(source))
    return Parsed(pd.concat([p.rows for p in parts], ignore_index=True),
                  pd.concat([p.rejected for p in parts], ignore_index=True),
                  sum(p.read for p in parts))


def _bools(array):
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def _instants(text):
    """UTC instants [µs since the epoch] of trimmed timestamp texts, and which parsed.

    The usual shapes (ISO 8601 date and time, up to 6 fractional digits, then nothing,
    `Z` or ` UTC`) are parsed by Arrow in C++. The other rows, or the whole block when Arrow
    meets an impossible date in it, go through pandas, which decides what the service accepts.
    """
    usual = _bools(pc.match_substring_regex(text, _PLAIN_INSTANT))
    micros = np.zeros(len(usual), dtype=np.int64)
    try:
        # The date and time end with a digit: trimming these characters drops the suffix.
        naive = pc.utf8_rtrim(text if usual.all() else text.filter(pa.array(usual)),
                              characters=" \tUTCutcZ")
        micros[usual] = naive.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
    except pa.ArrowInvalid:  # 2023-02-30 and the like: let pandas say which
        usual[:] = False
    parsed = usual.copy()
    other = np.flatnonzero(~usual)
    if len(other):
        instant = pd.to_datetime(_without_utc_suffix(text.take(pa.array(other))),
                                 format="ISO8601", utc=True, errors="coerce")
        micros[other] = _micros(instant)
        parsed[other] = instant.notna().to_numpy()
    return micros, parsed


def _without_utc_suffix(text):
    """Drop a trailing " UTC" (any case), in C++: pandas would call Python's `re` per row."""
    stripped = pc.replace_substring_regex(text, pattern=r"(?i)\s*UTC$", replacement="")
    return pd.Series(stripped.to_pandas())


def _micros(instant):
    """UTC instants as int64 microseconds since the epoch (0 where missing)."""
    naive = instant.dt.tz_localize(None).dt.as_unit("us")
    return naive.to_numpy(dtype="datetime64[us]").view(np.int64).copy()


def _seconds_of_day(text):
    """`HH:MM[:SS]` (an Arrow text column) as seconds after midnight; NaN when malformed
    or out of range."""
    parts = pc.extract_regex(pc.utf8_trim_whitespace(text), _TIME_OF_DAY)
    valid = _bools(parts.is_valid())

    def number(field):
        digits = pc.struct_field(parts, [field]).fill_null("0")
        return pc.if_else(pc.equal(digits, ""), "0", digits).cast(pa.int64()).to_numpy(
            zero_copy_only=False).astype(float)

    hour, minute, second = (number(i) for i in range(3))
    valid &= (hour < 24) & (minute < 60) & (second < 60)
    return np.where(valid, hour * 3600 + minute * 60 + second, np.nan)
