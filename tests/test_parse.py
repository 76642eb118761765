"""Parsing (issue 21): the fast paths read exactly what the general ones read.

References: pandas' ISO 8601 parser for timestamps (what the service accepted before Arrow
read the usual shapes), pandas' string methods for dayOfWeek (how the hours file was read
before), and one block holding the whole file for the cutting into blocks.
"""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import PROJECT_DIR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ingest import parse
from app.ingest.sources import IngestError, SourceFile


def reference_instants(texts):
    """µs of each text as pandas reads it without its " UTC" suffix (None: unparseable).

    All in one call, as the service's rows outside the usual shapes: pandas reads them all
    at the finest resolution any of them needs (nanoseconds for 7 fractional digits), and
    then those out of its range (years before 1678 or after 2261) at all.
    """
    stripped = pd.Series([re.sub(r"(?i)\s*UTC$", "", text.strip()) for text in texts])
    instants = pd.to_datetime(stripped, format="ISO8601", utc=True, errors="coerce")
    return [None if pd.isna(instant) else
            int(instant.to_datetime64().astype("datetime64[us]").astype(np.int64))
            for instant in instants]


def check_instants(texts):
    micros, parsed = parse._instants(pa.array(texts))
    got = [int(m) if ok else None for m, ok in zip(micros, parsed)]
    expected = reference_instants(texts)
    assert got == expected, [(t, g, e) for t, g, e in zip(texts, got, expected) if g != e]
    # Only texts of the shapes of `_PLAIN_INSTANT` take a fast path.
    usual = parse._usual_instants(pa.array(texts))[1]
    plain = pc.match_substring_regex(pa.array([t.strip() for t in texts]),
                                     parse._PLAIN_INSTANT).to_numpy(zero_copy_only=False)
    assert not (usual & ~plain).any(), [t for t, u, p in zip(texts, usual, plain) if u and not p]


@st.composite
def timestamp_texts(draw):
    """Timestamps near the usual shapes: odd years, days and clock values, separators,
    fractions and suffixes, then perhaps one byte changed, added or removed."""
    year = draw(st.sampled_from([1, 1677, 1899, 1900, 1969, 1970, 2000, 2023, 2024, 2099,
                                 2100, 2262, 9999]) | st.integers(1890, 2110))
    numbers = [draw(st.integers(0, top)) for top in (13, 32, 25, 61, 61)]
    text = f"{year:04d}-{numbers[0]:02d}-{numbers[1]:02d}" + draw(st.sampled_from(
        ["T", " ", "t", "_", "  "])) + "{:02d}:{:02d}:{:02d}".format(*numbers[2:])
    digits = draw(st.integers(0, 9))
    if digits or draw(st.booleans()):
        text += "." + "".join(draw(st.sampled_from("0123456789")) for _ in range(digits))
    text += draw(st.sampled_from(["", "", "Z", " UTC", " utc", " uTc", "UTC", "\tUTC",
                                  "  UTC", "z", "+00:00", "-05:30", " GMT", "ZZ", " UTCZ",
                                  " UTC UTC"]))
    edit = draw(st.sampled_from(["none", "none", "replace", "insert", "delete", "space"]))
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(list("0123456789-: T.Zx/") + ["\0", "é", "\u2003"]))
    if edit == "replace" and at < len(text):
        text = text[:at] + char + text[at + 1:]
    elif edit == "insert":
        text = text[:at] + char + text[at:]
    elif edit == "delete":
        text = text[:at] + text[at + 1:]
    elif edit == "space":
        text = draw(st.sampled_from([" ", "\t", "\u00a0"])) + text + " "
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(timestamp_texts(), min_size=1, max_size=12))
def test_timestamps_read_from_their_bytes_as_pandas_reads_them(texts):
    check_instants(texts)


def test_every_day_of_two_centuries_and_the_days_that_do_not_exist():
    # Every date 1900-2099, plus days 29-31 of every month (real or not), at varied times
    # and in every usual shape; compared with pandas all at once.
    days = np.arange("1900-01-01", "2100-01-01", dtype="datetime64[D]")
    texts = pd.Series(days.astype(str))
    months = pd.period_range("1900-01", "2099-12", freq="M").strftime("%Y-%m")
    texts = pd.concat([texts, *(pd.Series(months + f"-{day}") for day in (29, 30, 31))],
                      ignore_index=True)
    rng = np.random.default_rng(5)
    clock = pd.Series(rng.integers(0, 86400, len(texts))).map(
        lambda s: f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}")
    shapes = np.array(["", ".5", ".123456", ".0001 UTC", " UTC", "Z", ".98765Z", " utc"])
    tails = shapes[rng.integers(0, len(shapes), len(texts))]
    separators = np.where(rng.integers(0, 2, len(texts)) == 1, "T", " ")
    texts = (texts + separators + clock + tails).tolist()
    micros, parsed = parse._instants(pa.array(texts))
    reference = pd.to_datetime(pd.Series([re.sub(r"(?i)\s*UTC$", "", t) for t in texts]),
                               format="ISO8601", utc=True, errors="coerce")
    assert (parsed == reference.notna().to_numpy()).all()
    expected = (reference[parsed] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "us")
    assert (micros[parsed] == expected.to_numpy()).all()
    # All of them take the fast path.
    assert parse._usual_instants(pa.array(texts))[1].sum() == parsed.sum()


@pytest.mark.parametrize("texts", [
    [""], ["2023-01-25 18:13:22"], ["x", "2023-01-25T18:13:22.1Z"],
    ["2023-01-25 18:13:22.123456 UTC", ""], ["  2023-01-25 18:13:22 UTC"],
])
def test_timestamps_at_the_end_of_a_small_buffer(texts):
    # The 32 bytes read for the last rows pass the end of the buffer: a padded copy.
    check_instants(texts)


def test_a_slice_reads_its_own_rows():
    texts = pa.array(["x", "2023-01-25 18:13:22 UTC", "2023-01-26 00:00:00", "y"]).slice(1, 2)
    micros, parsed = parse._instants(texts)
    assert parsed.tolist() == [True, True]
    assert micros.tolist() == [1674670402000000, 1674691200000000]


def reference_days(texts):
    """dayOfWeek as the hours file was read with pandas: (day, valid) per text."""
    text = pd.Series(texts, dtype=object).str.strip()
    day = pd.to_numeric(text.where(text.str.fullmatch(r"-?\d+"), None), errors="coerce")
    valid = ~(day.isna() | ~day.between(0, 6))
    return day.fillna(0).astype(np.int16).where(valid, 0).tolist(), valid.tolist()


day_texts = st.sampled_from(
    ["0", "6", "7", "-0", "-00", "-1", "+1", "00006", "0" * 30 + "3", "06", "1.0", "1e0",
     " 3 ", "\t2", "\u20033\u00a0", "٣", "３", "", "-", "x", "3x", "99999999999999999999999",
     "-" + "0" * 40, "1 2", "\0"]) | st.text(alphabet="0123456789- +", max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(day_texts, min_size=1, max_size=20))
def test_day_of_week_reads_as_pandas_read_it(texts):
    table = pa.table({"store_id": pa.array(["s"] * len(texts)),
                      "day_of_week": pa.array(texts),
                      "start_time_local": pa.array(["09:00"] * len(texts)),
                      "end_time_local": pa.array(["17:00:00"] * len(texts)),
                      "line": pa.array(np.arange(len(texts)) + 2)})
    rows, rejected = parse.parse_hours("h.csv", table)
    days, valid = reference_days(texts)
    assert rows["line"].tolist() == [n + 2 for n, ok in enumerate(valid) if ok]
    assert rows["day_of_week"].tolist() == [d for d, ok in zip(days, valid) if ok]
    assert rejected["line"].tolist() == [n + 2 for n, ok in enumerate(valid) if not ok]
    stripped = [t.strip() for t, ok in zip(texts, valid) if not ok]
    assert rejected["reason"].tolist() == [
        f"dayOfWeek not in 0-6: '{t[:parse.QUOTED_CHARS]}'".replace("\0", "\\0")
        for t in stripped]


def test_hours_and_zones_keep_their_types():
    # Stripped ids and zones as Python str in object columns, as pandas gave them.
    hours = pa.table({"store_id": [" a ", "b"], "day_of_week": ["1", "2"],
                      "start_time_local": ["09:00", "10:00"],
                      "end_time_local": ["17:00", "18:00:30"], "line": [2, 3]})
    rows, _ = parse.parse_hours("h.csv", hours)
    assert rows.dtypes.astype(str).to_dict() == {
        "store_id": "object", "line": "int64", "day_of_week": "int16",
        "start_local_s": "int32", "end_local_s": "int32"}
    assert rows["store_id"].tolist() == ["a", "b"]
    assert rows["end_local_s"].tolist() == [17 * 3600, 18 * 3600 + 30]
    zones = pa.table({"store_id": ["\u2003a", "b"], "timezone_str": [" Asia/Tokyo", "UTC"],
                      "line": [2, 3]})
    rows, _ = parse.parse_timezone("z.csv", zones)
    assert rows.dtypes.astype(str).to_dict() == {
        "store_id": "object", "line": "int64", "timezone_str": "object"}
    assert rows.values.tolist() == [["a", 2, "Asia/Tokyo"], ["b", 3, "UTC"]]


def parsed_rows(folder, kind, name, block_bytes, monkeypatch):
    monkeypatch.setattr(parse, "BLOCK_BYTES", block_bytes)
    try:
        parsed = parse.parse_file(SourceFile(kind, name, folder / name))
    except IngestError as error:  # data of a byte order mark alone: Arrow finds no CSV
        return str(error)
    return (parsed.rows.astype({"store_id": object}).values.tolist(),
            parsed.rejected[["line", "reason"]].values.tolist(), parsed.read)


fields = st.sampled_from(["1", "a b", " x ", '"q,uoted"', '""', "", '"say ""hi"""', "é",
                          "\ufeffbom", "\ufeff", "America/New_York", "a\0b"])
rows_ = st.lists(fields, min_size=0, max_size=4).map(",".join)
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(rows_, line_ends), max_size=40), st.booleans(),
       st.integers(1, 80), st.booleans())
def test_blocks_of_any_size_read_as_one_block(tmp_path_factory, monkeypatch, lines, bom,
                                             block_bytes, last_end):
    # Rows of 0-4 fields (2 expected) with quotes, empty lines, byte order marks, every line
    # end, cut into blocks of 1-80 bytes: rows, line numbers and rejections as in one block.
    text = "".join(row + end for row, end in lines)
    if lines and not last_end:
        text = text[:-len(lines[-1][1])]
    folder = tmp_path_factory.mktemp("blocks")
    (folder / "timezones.csv").write_bytes(
        ("\ufeff" if bom else "").encode() + b"store_id,timezone_str\n" + text.encode())
    whole = parsed_rows(folder, "timezone", "timezones.csv", 1 << 30, monkeypatch)
    assert parsed_rows(folder, "timezone", "timezones.csv", block_bytes, monkeypatch) == whole
    if not isinstance(whole, str):
        assert whole[2] == len(text.replace("\r\n", "\n").replace("\r", "\n").splitlines())


def test_a_status_file_cut_into_many_blocks(tmp_path, monkeypatch):
    # Polls of every usual shape and some bad rows, in blocks of ~300 bytes.
    lines = ["store_id,timestamp_utc,status"]
    shapes = ["2023-01-25 {}:00 UTC", "2023-01-25T{}:00.5Z", "2023-01-25 {}:00.123456 utc",
              " 2023-01-25 {}:00 ", "2023-01-25T{}:00+00:00", "2023-02-30 {}:00", "{}"]
    for n in range(600):
        status = ["active", "inactive", " Active", "INACTIVE", "maybe"][n % 5]
        stamp = shapes[n % len(shapes)].format(f"{n // 60 % 24:02d}:{n % 60:02d}")
        lines.append(f"{n % 17},{stamp},{status}" if n % 97 else f"{n},only")
    (tmp_path / "store_status.csv").write_text("\n".join(lines) + "\n")
    whole = parsed_rows(tmp_path, "status", "store_status.csv", 1 << 30, monkeypatch)
    assert parsed_rows(tmp_path, "status", "store_status.csv", 300, monkeypatch) == whole
    rows, rejected, read = whole
    assert read == 600 and len(rows) + len(rejected) == 600
    assert {reason.split(" '")[0] for _, reason in rejected} == {
        "expected 3 fields, found 2", "unknown status", "unparseable timestamp_utc"}


_PEAK = """
import sys
from pathlib import Path
from app.ingest import parse
from app.ingest.sources import IngestError, SourceFile
parse.BLOCK_BYTES = 1 << 20
before = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
for _ in parse.parse_batches(SourceFile("status", "store_status.csv", Path(sys.argv[1]))):
    pass
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
print((peak - before) // 1024)
"""


def test_memory_is_bounded_by_the_block_size_not_the_file(tmp_path):
    # The same rows 16 MB and 64 MB long, in blocks of 1 MB: the larger file takes no more
    # memory (Arrow's own reader read up to 32 blocks ahead, the whole file when it could).
    line = b"1234567890123456789,2023-01-25 18:13:22.479220 UTC,active\n"
    peaks = []
    for megabytes in (16, 64):
        path = tmp_path / f"{megabytes}.csv"
        path.write_bytes(b"store_id,timestamp_utc,status\n"
                         + line * (megabytes * (1 << 20) // len(line)))
        done = subprocess.run([sys.executable, "-c", _PEAK, str(path)], cwd=PROJECT_DIR,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        peaks.append(int(done.stdout))
    assert peaks[1] <= peaks[0] + 8, peaks
