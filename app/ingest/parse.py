"""Turn one CSV stream into valid rows plus rejected rows (file, line, reason).

Every data line of a file ends up in exactly one of the two: `parse_*` functions never drop a
row silently. Canonical column names are applied first, as the file may use aliases and any
column order.
"""

import csv
import functools
import queue
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
# A dayOfWeek that pandas' to_numeric reads as 0-6 (ASCII digits, an optional minus sign).
_DAY_OF_WEEK = r"^(?:-?0+|0*[1-6])$"
# Bytes per block, cut at a line end: about 140,000 polls. Smaller blocks kept less in
# flight but paid more per block (a dictionary of the store ids per block); 8 MB measured
# best on the 14,000-store set (docs in `parse_batches`).
BLOCK_BYTES = 8 << 20
# Threads that parse and validate blocks (see `parse_batches`).
PARSE_THREADS = 2
# Rows per slice of the integer work on bytes (`_usual_instants`): its dozens of temporary
# columns stay under 128 KiB, which malloc serves from memory it holds. Over a whole
# block (1 MB each) they were fresh memory from the system at every block: 120,000 page
# faults for the 14,000-store set, 0.4 s of system time, more than the work itself.
SLICE_ROWS = 8192
# How much of an offending value a rejection message quotes.
QUOTED_CHARS = 100
# Polls later than the clock plus this many minutes are rejected, outside an app too.
DEFAULT_MAX_FUTURE_MINUTES = 60.0
# A NUL character: PostgreSQL's text cannot hold it, so no file may bring one, on any database.
NUL = "\x00"
_BOM = b"\xef\xbb\xbf"


@dataclass
class Parsed:
    """Valid rows of a file or block (with their `line`), its rejections, and the rows read."""

    rows: pd.DataFrame
    rejected: pd.DataFrame
    read: int


def parse_batches(source, progress=None):
    """Read and validate one `SourceFile`, a `Parsed` per block of rows, in file order.

    The calling thread only cuts the bytes into blocks of about BLOCK_BYTES at line ends
    (`_blocks`); each block is read as CSV and validated on one of PARSE_THREADS threads.
    Arrow's reader and kernels let go of the GIL, so every core works for the whole file
    (reading on the calling thread kept the read, a third of the work, on one core). At
    most PARSE_THREADS + 1 blocks are in flight besides the one the caller holds: memory
    is bounded by the block size, whatever the size of the file. Raises `IngestError` when
    the file is not CSV or lacks a required column. `progress(fraction)`, when given, hears
    how much of the file has been read.
    """
    name, size = source.name, max(source.size, 1)
    # Read in the app's context: the blocks are validated on threads without one.
    parse = PARSERS[source.kind] if source.kind != "status" else functools.partial(
        parse_status, latest=latest_poll_allowed_us())
    with source.open() as raw, ThreadPoolExecutor(PARSE_THREADS,
                                                  thread_name_prefix="parse") as pool:
        stream = CheckedStream(raw, name, max_line_bytes())
        columns = _columns(stream, name, source.kind)
        pending, lines_before = deque(), 0
        free = queue.SimpleQueue()  # buffers whose block has been read, to fill again
        for block in _blocks(stream, free, min(BLOCK_BYTES, size)):
            pending.append(pool.submit(_parse_block, parse, name, columns, block, free))
            if len(pending) > PARSE_THREADS:
                parsed = _counted_from(pending.popleft().result(), lines_before)
                lines_before += parsed.read
                yield parsed
            if progress:
                progress(min(1.0, stream.tell() / size))
        if not pending and not lines_before:  # a header and nothing else
            pending.append(pool.submit(_parse_block, parse, name, columns, None, free))
        while pending:
            parsed = _counted_from(pending.popleft().result(), lines_before)
            lines_before += parsed.read
            yield parsed


def parse_file(source):
    """Read and validate one `SourceFile` whole (for files that fit in memory)."""
    parts = list(parse_batches(source))
    return Parsed(pd.concat([p.rows for p in parts], ignore_index=True),
                  pd.concat([p.rejected for p in parts], ignore_index=True),
                  sum(p.read for p in parts))


def check_columns(source):
    """Raise `IngestError` unless the file's header names every required column."""
    with source.open() as stream:
        _columns(CheckedStream(stream, source.name, max_line_bytes()), source.name,
                 source.kind)


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


def _blocks(stream, free, block_bytes):
    """The bytes after the header in blocks of about `block_bytes`, each ending after a line
    end, as Arrow's own streaming reader cuts its blocks: a line never spans two blocks.
    Yields ``(buffer, start, end)``, the block being ``buffer[start:end]``.

    A block is cut after its last newline (`\\n`, `\\r` or `\\r\\n`) but the one in its last
    byte, a `\\r` whose `\\n` may come with the next read. The text after the cut, at most a
    line, starts the next buffer. A line without an end yet (longer than the block) waits
    for the next read; `stream` bounds its length. The buffers are filled again once their
    block has been read (`free`): at most PARSE_THREADS + 2 of them, memory that is not
    new at each block.

    Arrow skips a byte order mark where its input starts: as the file was read, only where
    the data starts. A later block that starts with one gets a second (in the 3 bytes kept
    free before each block) for Arrow to skip.
    """
    rest, first = b"", True
    while True:
        buffer = _free_buffer(free, len(_BOM) + len(rest), block_bytes)
        start = len(_BOM)
        buffer[start:start + len(rest)] = rest
        count = stream.readinto(buffer, start + len(rest))
        end = start + len(rest) + count
        if not count:
            if rest:
                yield _block(buffer, start, end, first)
            return
        at = max(buffer.rfind(b"\n", start, end - 1), buffer.rfind(b"\r", start, end - 1))
        if at < 0:
            rest = buffer[start:end]
            free.put(buffer)
            continue
        cut = at + 2 if buffer[at] == 13 and buffer[at + 1] == 10 else at + 1
        rest = buffer[cut:end]
        yield _block(buffer, start, cut, first)
        first = False


def _free_buffer(free, kept, block_bytes):
    """A buffer with room for `kept` bytes and half a block at least: one whose block has
    been read, or a new one (with room for a whole block after `kept`)."""
    try:
        buffer = free.get_nowait()
    except queue.Empty:
        buffer = bytearray(0)
    return buffer if len(buffer) >= kept + max(block_bytes // 2, 1) \
        else bytearray(kept + block_bytes)


def _block(buffer, start, end, first):
    if not first and buffer[start:start + len(_BOM)] == _BOM:
        start -= len(_BOM)
        buffer[start:start + len(_BOM)] = _BOM
    return buffer, start, end


def _parse_block(parse, name, columns, block, free):
    """Read one block (`_read_block`), hand its buffer back to `free`, and validate its
    rows with `parse`: a `Parsed` whose lines count from the block's start
    (`_counted_from` moves them to the file's)."""
    buffer, start, end = block or (b"", 0, 0)
    table, read_rejected = _read_block(name, columns, memoryview(buffer)[start:end])
    if block:
        free.put(buffer)
    rows, rejected = parse(name, table)
    if len(read_rejected) and len(rejected):  # the block's rejections in line order
        rejected = pd.concat([read_rejected, rejected], ignore_index=True).sort_values(
            "line", kind="stable", ignore_index=True)
    elif len(read_rejected):
        rejected = read_rejected
    return Parsed(rows, rejected, table.num_rows + len(read_rejected))


def _read_block(name, columns, block):
    """One block of lines as an Arrow table of the required columns (as text) and each
    row's `line`, the block's first row being line 2; and its rows with the wrong number of
    fields, as rejections."""
    placeholders, keep = columns
    bad_lines, reasons = [], []

    def on_invalid_row(row):
        # `number` counts the block's rows from 1, so line = number + 1.
        bad_lines.append(row.number + 1)
        reasons.append(f"expected {row.expected_columns} fields, found {row.actual_columns}")
        return "skip"

    if not len(block):
        table = pa.table({p: pa.array([], pa.string()) for p in keep})
    else:
        try:
            table = pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(block)),
                # Line numbers of bad rows are only known when reading on one thread.
                read_options=pacsv.ReadOptions(column_names=placeholders, use_threads=False,
                                               block_size=len(block)),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row,
                                                 ignore_empty_lines=False),
                # Only the required columns, as text. `stream` checked that every byte is
                # UTF-8 (a block ends at a line end: no character spans two).
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(keep), column_types={p: pa.string() for p in keep},
                    strings_can_be_null=False, quoted_strings_can_be_null=False,
                    check_utf8=False),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            reason = _short(str(exc).splitlines()[0])
            raise IngestError(f"{name}: not a readable CSV file ({reason})") from None
    lines = _good_row_lines(0, table.num_rows, bad_lines)
    table = table.rename_columns(list(keep.values())).append_column("line", pa.array(lines))
    return table, rejection_frame(name, bad_lines, reasons)


def _counted_from(parsed, lines_before):
    """`parsed` of a block with its lines counted from the file's start: `lines_before` is
    the number of rows (good and bad) of the blocks before it."""
    if lines_before:
        parsed.rows["line"] += lines_before
        parsed.rejected["line"] += lines_before
    return parsed


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
    if not len(rows):
        return frame, rejected
    return frame.loc[~bad].reset_index(drop=True), rejected


def _first_problem(checks):
    """Which rows fail, and why: ``(bad, rows, reasons)``.

    `checks` are ``(failed, message, value)`` in order of precedence, `failed` a boolean
    array, or None when no row can fail it; when `value` is given, the offending value is
    quoted after the message. `value` is an Arrow text column, or a function that gives the
    texts of some rows (so that only failing rows are prepared for quoting, trimmed).
    `bad` marks the failing rows, `rows` lists them in order and `reasons` gives each one
    the message of its first failing check. Messages are only built for the rows that fail.
    """
    bad = None
    rows, reasons = [], []
    for failed, message, value in checks:
        if failed is None:
            continue
        failed = np.asarray(failed, dtype=bool)
        if bad is None:
            bad = np.zeros(len(failed), dtype=bool)
        if not failed.any():
            continue
        hit = np.flatnonzero(failed & ~bad)
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
    """The values of a text column (Arrow, or a function of the rows) at positions `rows`,
    as an object array of str."""
    texts = (column(rows) if callable(column) else column.take(pa.array(rows))).to_pylist()
    # A message quotes at most QUOTED_CHARS of the value, NUL characters written as \0.
    return np.asarray([text[:QUOTED_CHARS].replace(NUL, "\\0") for text in texts],
                      dtype=object)


def _has_nul(column):
    """Which values of an Arrow text column hold a NUL character."""
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

    Works on Arrow columns, without a Python object per row. Store ids repeat, so each
    distinct text is trimmed once, through a dictionary encoding; timestamps and statuses
    in their usual form are read without trimming (`_instants`, `_statuses`).
    """
    store_id = _trimmed_dictionary(table["store_id"])
    timestamp = _one_chunk(table["timestamp_utc"])
    instant, parsed = _instants(timestamp)
    active, known = _statuses(table["status"])
    latest_us, minutes = latest or latest_poll_allowed_us()
    id_code = store_id.indices.to_numpy(zero_copy_only=False)

    def trimmed(rows):
        return pc.utf8_trim_whitespace(timestamp.take(pa.array(rows)))

    bad, rows, reasons = _first_problem([
        (_of_codes(_bools(pc.equal(store_id.dictionary, "")), id_code), "empty store_id",
         None),
        (_of_codes(_has_nul(store_id.dictionary), id_code), "NUL character in store_id",
         None),
        (~parsed, "unparseable timestamp_utc", trimmed),
        (parsed & (instant > latest_us),
         f"timestamp_utc later than the server's clock plus MAX_FUTURE_MINUTES ({minutes:g})",
         trimmed),
        (~known, "unknown status", table["status"]),
    ])
    line = table["line"].to_numpy()
    if len(rows):
        good = ~bad
        store_id, instant, active, line = (store_id.filter(pa.array(good)), instant[good],
                                           active[good], line[good])
    valid = pd.DataFrame({"store_id": _categorical(store_id), "timestamp_us": instant,
                          "active": active, "line": line}, copy=False)
    return valid, rejection_frame(name, table["line"].to_numpy()[rows], reasons)


def _of_codes(failed, codes):
    """Which rows fail, from which dictionary entries fail (None when none does)."""
    return failed[codes] if failed.any() else None


def _one_chunk(column):
    """A text column as one Arrow array of type string."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column if column.type == pa.string() else column.cast(pa.string())


def _trimmed_dictionary(column):
    """A text column as a dictionary array whose distinct values have been trimmed of
    surrounding white space (values equal once trimmed share one entry)."""
    encoded = pc.dictionary_encode(_one_chunk(column))
    trimmed = pc.dictionary_encode(pc.utf8_trim_whitespace(encoded.dictionary))
    indices = trimmed.indices.take(encoded.indices)
    return pa.DictionaryArray.from_arrays(indices, trimmed.dictionary)


def _categorical(encoded):
    """A dictionary array (with distinct entries) as a pandas categorical, from its codes
    as they are (Arrow made them valid): half the cost of `DictionaryArray.to_pandas`."""
    categories = pd.CategoricalDtype(pd.Index(encoded.dictionary.to_pandas()))
    return pd.Categorical.from_codes(encoded.indices.to_numpy(zero_copy_only=False),
                                     dtype=categories, validate=False)


def _statuses(column):
    """Which rows say active, and which a known status: "active" or "inactive", trimmed,
    in any case. The usual exact words are compared in C++; only the other rows' distinct
    values are trimmed and lower-cased."""
    column = _one_chunk(column)
    active = _bools(pc.equal(column, "active"))
    known = active | _bools(pc.equal(column, "inactive"))
    other = np.flatnonzero(~known)
    if len(other):
        encoded = pc.dictionary_encode(column.take(pa.array(other)))
        names = pc.utf8_lower(pc.utf8_trim_whitespace(encoded.dictionary)).to_numpy(
            zero_copy_only=False)
        code = encoded.indices.to_numpy(zero_copy_only=False)
        active[other] = (names == "active")[code]
        known[other] = np.isin(names, ["active", "inactive"])[code]
    return active, known


def parse_hours(name, table):
    """``(valid, rejected)`` hours rows; valid ones have `store_id`, `day_of_week`
    (0 = Monday), `start_local_s`, `end_local_s` and `line`."""
    store_id = pc.utf8_trim_whitespace(_one_chunk(table["store_id"]))
    day_text = _one_chunk(table["day_of_week"])
    day, day_ok = _days_of_week(day_text)
    start = _seconds_of_day(table["start_time_local"])
    end = _seconds_of_day(table["end_time_local"])
    failure = _first_problem([
        (_bools(pc.equal(store_id, "")), "empty store_id", None),
        (_has_nul(store_id), "NUL character in store_id", None),
        (~day_ok, "dayOfWeek not in 0-6:",
         lambda rows: pc.utf8_trim_whitespace(day_text.take(pa.array(rows)))),
        (np.isnan(start), "unparseable start_time_local", table["start_time_local"]),
        (np.isnan(end), "unparseable end_time_local", table["end_time_local"]),
    ])
    rows = pd.DataFrame({"store_id": _objects(store_id), "line": table["line"].to_numpy(),
                         "day_of_week": day,
                         "start_local_s": np.nan_to_num(start).astype(np.int32),
                         "end_local_s": np.nan_to_num(end).astype(np.int32)})
    return _split(name, rows, failure)


def _days_of_week(text):
    """dayOfWeek texts as int16 days (0 where invalid), and which are valid: what pandas'
    to_numeric read as 0-6 from the trimmed text when it was ASCII digits with an optional
    minus sign (`_DAY_OF_WEEK`). A single digit is read from its byte; only the other rows
    are trimmed and matched."""
    offsets, data = _text_buffers(text)
    first = _first_bytes(data, offsets)
    valid = (np.diff(offsets) == 1) & (first >= ord("0")) & (first <= ord("6"))
    day = np.where(valid, first - ord("0"), 0).astype(np.int16)
    other = np.flatnonzero(~valid)
    if len(other):
        trimmed = pc.utf8_trim_whitespace(text.take(pa.array(other)))
        matched = _bools(pc.match_substring_regex(trimmed, _DAY_OF_WEEK))
        valid[other] = matched
        # The last digit is the day: "0006" is 6, "-0" is 0.
        day[other] = np.where(matched, _last_bytes(trimmed) - ord("0"), 0)
    return day, valid


def parse_timezone(name, table):
    """``(valid, rejected)`` zone rows; valid ones have `store_id`, `timezone_str` (kept as
    given, even when unknown) and `line`."""
    store_id = pc.utf8_trim_whitespace(_one_chunk(table["store_id"]))
    zone = pc.utf8_trim_whitespace(_one_chunk(table["timezone_str"]))
    failure = _first_problem([(_bools(pc.equal(store_id, "")), "empty store_id", None),
                              (_has_nul(store_id), "NUL character in store_id", None),
                              (_has_nul(zone), "NUL character in timezone_str", None)])
    rows = pd.DataFrame({"store_id": _objects(store_id), "line": table["line"].to_numpy(),
                         "timezone_str": _objects(zone)})
    return _split(name, rows, failure)


PARSERS = {"status": parse_status, "hours": parse_hours, "timezone": parse_timezone}


def _objects(column):
    """An Arrow text column as a pandas column of Python str (object dtype). Ids and zone
    names repeat: one str per distinct value, shared by its rows."""
    encoded = pc.dictionary_encode(column)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    return pd.Series(distinct[encoded.indices.to_numpy(zero_copy_only=False)], dtype=object,
                     copy=False)


def _bools(array):
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def _text_buffers(text):
    """The offsets (int64, one more than rows) and bytes (uint8) of a string array."""
    _, offsets, data = text.buffers()
    offsets = np.frombuffer(offsets, np.int32, len(text) + 1, text.offset * 4)
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offsets.astype(np.int64), data


def _last_bytes(text):
    """The last byte of each value of a string array (0 for an empty one), as int64."""
    offsets, data = _text_buffers(text)
    ends = offsets[1:]
    last = np.zeros(len(ends), dtype=np.int64)
    filled = ends > offsets[:-1]
    last[filled] = data[ends[filled] - 1]
    return last


def _first_bytes(data, offsets):
    """The first byte of each value (whatever follows, for an empty one), as int64."""
    return data[np.minimum(offsets[:-1], len(data) - 1)].astype(np.int64) if len(data) \
        else np.zeros(len(offsets) - 1, dtype=np.int64)


def _instants(text):
    """UTC instants [µs since the epoch] of timestamp texts, and which parsed.

    Rows in the usual shape are read straight from their bytes (`_usual_instants`), which
    costs a fifth of a regular expression and a cast. The others are trimmed and go
    through `_other_instants`, where pandas decides what the service accepts.
    """
    text = _one_chunk(text)
    micros, parsed = np.empty(len(text), dtype=np.int64), np.empty(len(text), dtype=bool)
    for start in range(0, len(text), SLICE_ROWS):
        micros[start:start + SLICE_ROWS], parsed[start:start + SLICE_ROWS] = \
            _usual_instants(text.slice(start, SLICE_ROWS))
    other = np.flatnonzero(~parsed)
    if len(other):
        micros[other], parsed[other] = _other_instants(
            pc.utf8_trim_whitespace(text.take(pa.array(other))))
    return micros, parsed


def _byte_rules(template):
    """What each byte of `template` asks, as four little-endian words (32 bytes): a mask
    and the bits expected under it, and the lanes that hold a digit. In a template, ``d``
    is a digit, ``*`` any byte, a lower-case letter that letter in either case, any other
    character itself; bytes past its end are free."""
    mask, expected, digit = (np.zeros(32, dtype=np.uint8) for _ in range(3))
    for at, char in enumerate(template):
        if char == "d":
            mask[at], expected[at], digit[at] = 0xF0, 0x30, 0xFF
        elif char.islower():
            mask[at], expected[at] = 0xDF, ord(char.upper())
        elif char != "*":
            mask[at], expected[at] = 0xFF, ord(char)
    return np.stack([mask, expected, digit]).view("<u8")


# The usual shapes: a date and time (byte 10, `T` or a space, is checked apart), then an
# optional fraction of 1-6 digits, then nothing, `Z` or ` UTC` in any case. A shape is
# known from a row's length and last byte (a digit, `Z`, `C`/`c`): `_USUAL_SHAPE` maps
# length * 3 + kind of last byte to a shape, whose rules for bytes 16-31 are in
# `_USUAL_TAIL` (shape 0 matches nothing). Bytes 0-15 follow `_USUAL_HEAD` in every shape.
_USUAL_HEAD = _byte_rules("dddd-dd-dd*dd:dd")[:, :2]
_LAST_KIND = np.zeros(256, dtype=np.int64)
_LAST_KIND[[ord("Z"), ord("C"), ord("c")]] = 1, 2, 2
_USUAL_SHAPE = np.zeros(32 * 3, dtype=np.int64)
_USUAL_TAIL = [np.array([[0, 0], [1, 1], [0, 0]], dtype="<u8")]  # (w & 0) != 1: no match
for _suffix_kind, _suffix in enumerate(["", "Z", " utc"]):
    for _fraction in ["", *("." + "d" * n for n in range(1, 7))]:
        _template = "dddd-dd-dd*dd:dd:dd" + _fraction + _suffix
        _USUAL_SHAPE[len(_template) * 3 + _suffix_kind] = len(_USUAL_TAIL)
        _USUAL_TAIL.append(_byte_rules(_template)[:, 2:])
# [rule (mask, expected, digit lanes), word (bytes 16-23, 24-31), shape]: each a small
# contiguous table, as gathering from one is cheap.
_USUAL_TAIL = np.ascontiguousarray(np.stack(_USUAL_TAIL).transpose(1, 2, 0))
# Days since the epoch to each month's first day, and its length, 1900-01 to 2099-12.
_MONTHS = np.arange("1900-01", "2100-02", dtype="datetime64[M]").astype("datetime64[D]")
_MONTH_START = _MONTHS[:-1].astype(np.int64)
_MONTH_DAYS = np.diff(_MONTHS.astype(np.int64))
del _suffix_kind, _suffix, _fraction, _template, _MONTHS


def _usual_instants(text):
    """UTC instants [µs] of the rows of a string array that hold a timestamp in the usual
    shape, read from their bytes with whole-column integer operations; and which do.

    The usual shape is a subset of `_PLAIN_INSTANT` (one space before `UTC`, no white
    space around), where Arrow and pandas agree, with a real date: every other row is left
    to `_other_instants`. The 32 bytes from each row's start are gathered as four 64-bit
    words (bytes past the row are masked off). A byte is a digit when its high nibble is
    3 and adding 6 keeps it so; two digits side by side become a number with one multiply
    per word.
    """
    offsets, data = _text_buffers(text)
    count = len(text)
    if not len(data):
        return np.zeros(count, dtype=np.int64), np.zeros(count, dtype=bool)
    kind = _LAST_KIND[data[offsets[1:] - 1]]  # an empty first row reads data[-1]: no matter
    shape = _USUAL_SHAPE[np.minimum(offsets[1:] - offsets[:-1], 31) * 3 + kind]
    words = _words_at(data, offsets[:-1])
    rules = [[*_USUAL_HEAD[rule], *(table[shape] for table in _USUAL_TAIL[rule])]
             for rule in range(3)]
    ok = np.ones(count, dtype=bool)
    for value, mask, expected, digit in zip(words, *rules):
        ok &= (value & mask) == expected
        ok &= ((value + (digit & 0x0606060606060606)) & (digit & 0xF0F0F0F0F0F0F0F0)) == (
            digit & 0x3030303030303030)
    separator = (words[1] >> 16) & 0xFF
    ok &= (separator == ord(" ")) | (separator == ord("T"))

    def pairs(value, digit=0x0F0F0F0F0F0F0F0F):
        # Byte i becomes the number of the digits at bytes i and i + 1 (at most 99).
        value = value & (digit & 0x0F0F0F0F0F0F0F0F)
        return (value * 10 + (value >> 8)).view(np.int64)

    def byte(value, at):
        return (value >> (8 * at)) & 0xFF

    date, clock = pairs(words[0]), pairs(words[1])
    seconds, fraction = pairs(words[2], rules[2][2]), pairs(words[3], rules[2][3])
    year = byte(date, 0) * 100 + byte(date, 2)
    month, day = byte(date, 5), byte(clock, 0)
    hour, minute, second = byte(clock, 3), byte(clock, 6), byte(seconds, 1)
    ok &= (year >= 1900) & (year <= 2099) & (month >= 1) & (month <= 12) & (day >= 1)
    ok &= (hour < 24) & (minute < 60) & (second < 60)
    month_index = np.clip((year - 1900) * 12 + month - 1, 0, len(_MONTH_START) - 1)
    ok &= day <= _MONTH_DAYS[month_index]
    micros = ((_MONTH_START[month_index] + day - 1) * 86400 + hour * 3600 + minute * 60
              + second) * 1_000_000 + (byte(seconds, 4) * 10000 + byte(seconds, 6) * 100
                                       + byte(fraction, 0))
    micros[~ok] = 0
    return micros, ok


def _words_at(data, starts, count=4):
    """The 8 * `count` bytes from each of `starts` in `data` as `count` little-endian
    uint64 words (`count` x rows, each word a contiguous column).

    One gather of records from an overlapping view of the buffer; the last rows, whose
    bytes would pass the buffer's end, read from a padded copy of its end.
    """
    width = 8 * count
    record = np.dtype((np.void, width))
    base = max(len(data) - width, 0)  # where the padded copy of the end starts
    far = starts > len(data) - width
    if not far.any():
        words = _records(data, record)[starts]
    else:
        padded = np.zeros(len(data) - base + width, dtype=np.uint8)
        padded[:len(data) - base] = data[base:]
        words = np.empty(len(starts), dtype=record)
        words[~far] = _records(data, record)[starts[~far]]
        words[far] = _records(padded, record)[starts[far] - base]
    return np.ascontiguousarray(words.view("<u8").reshape(len(starts), count).T)


def _records(data, record):
    """Every run of `record.itemsize` bytes of `data`, one starting at each byte."""
    return np.ndarray((max(len(data) - record.itemsize + 1, 0),), dtype=record, buffer=data,
                      strides=(1,))


def _other_instants(text):
    """UTC instants [µs] of trimmed timestamp texts outside the usual shape, and which
    parsed.

    The shapes of `_PLAIN_INSTANT` are parsed by Arrow in C++. The other rows, or all of
    them when Arrow meets an impossible date, go through pandas, which decides what the
    service accepts.
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


# `HH:MM:SS` and `HH:MM` by bytes: mask, expected bits and digit lanes of the first word.
_CLOCK_RULES = {8: _byte_rules("dd:dd:dd")[:, 0], 5: _byte_rules("dd:dd")[:, 0]}


def _seconds_of_day(text):
    """`HH:MM[:SS]` (an Arrow text column) as seconds after midnight; NaN when malformed
    or out of range. `HH:MM:SS` and `HH:MM` are read from their bytes (as timestamps are,
    `_usual_instants`); only the other rows are trimmed and matched (`_TIME_OF_DAY`)."""
    text = _one_chunk(text)
    offsets, data = _text_buffers(text)
    length = np.diff(offsets)
    seconds = np.full(len(text), np.nan)
    if len(data):
        value = _words_at(data, offsets[:-1], count=1)[0]
        long = length == 8
        mask, expected, digit = (np.where(long, eight, five)
                                 for eight, five in zip(*_CLOCK_RULES.values()))
        ok = ((length == 8) | (length == 5)) & ((value & mask) == expected) & (
            ((value + (digit & 0x0606060606060606)) & (digit & 0xF0F0F0F0F0F0F0F0))
            == (digit & 0x3030303030303030))
        value = value & (digit & 0x0F0F0F0F0F0F0F0F)
        pairs = (value * 10 + (value >> 8)).view(np.int64)
        hour, minute, second = pairs & 0xFF, (pairs >> 24) & 0xFF, (pairs >> 48) & 0xFF
        ok &= (hour < 24) & (minute < 60) & (second < 60)
        seconds[ok] = (hour * 3600 + minute * 60 + second)[ok]
    else:
        ok = np.zeros(len(text), dtype=bool)
    other = np.flatnonzero(~ok)
    if len(other):
        seconds[other] = _matched_seconds_of_day(text.take(pa.array(other)))
    return seconds


def _matched_seconds_of_day(text):
    """`_seconds_of_day` of any text, trimmed and matched by `_TIME_OF_DAY`."""
    parts = pc.extract_regex(pc.utf8_trim_whitespace(text), _TIME_OF_DAY)
    valid = _bools(parts.is_valid())

    def number(field):
        digits = pc.struct_field(parts, [field]).fill_null("0")
        return pc.if_else(pc.equal(digits, ""), "0", digits).cast(pa.int64()).to_numpy(
            zero_copy_only=False).astype(float)

    hour, minute, second = (number(i) for i in range(3))
    valid &= (hour < 24) & (minute < 60) & (second < 60)
    return np.where(valid, hour * 3600 + minute * 60 + second, np.nan)
