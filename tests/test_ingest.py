"""Ingest: every row loaded, a duplicate or rejected; whole-file problems load nothing."""

import re
import shutil
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa
from conftest import BUNDLED_DATA, GOLDEN_DIR, LOOP_DATA_DIR, TEST_DATABASE, write_csv

from app.extensions import db
from app.ingest import bulk, parse
from app.ingest import load as load_module
from app.ingest.load import IngestError, ingest
from app.storage.poll_order import last_of_each_key, sorted_polls

STATUS_HEADER = "store_id,timestamp_utc,status"


def table(sql):
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def polls():
    return table("SELECT s.store_id, p.timestamp_us, p.active FROM store_status p "
                 "JOIN store s ON s.id = p.store_pk ORDER BY 1, 2")


def counts(summary):
    return {f.name: (f.read, f.loaded, f.duplicate, f.rejected) for f in summary.files}


def test_aliases_formats_and_rejections_of_golden_case_m(app):
    # Counts worked out by hand for case m (tests/golden/README.md).
    with app.app_context():
        summary = ingest(GOLDEN_DIR / "m_formats_aliases_rejects")
        rejected = {(r.file, r.line): r.reason for r in summary.rejections.itertuples()}
        stored = table("SELECT file, line, reason FROM ingest_rejection ORDER BY file, line")
    assert counts(summary) == {"Status.csv": (9, 5, 0, 4), "Menu_Hours.csv": (5, 1, 0, 4),
                               "TimeZones.csv": (3, 2, 0, 1)}
    assert "timestamp" in rejected[("Status.csv", 5)]
    assert "status" in rejected[("Status.csv", 6)]
    assert "store_id" in rejected[("Status.csv", 7)]
    assert "2023-02-30" in rejected[("Status.csv", 10)]
    assert sorted(line for file, line in rejected if file == "Menu_Hours.csv") == [3, 4, 5, 6]
    assert len(stored) == 9 and ("TimeZones.csv", 4, "empty store_id") in stored


def test_duplicates_last_row_wins_golden_case_h(app):
    # read 9 = loaded 5 + duplicate 4; line 6 (10:00 active) beats line 3 (inactive), and
    # 8002's "2023-01-25T11:45:00Z" is the same instant as "2023-01-25 11:45:00 UTC".
    with app.app_context():
        summary = ingest(GOLDEN_DIR / "h_duplicates")
        rows = polls()
    assert counts(summary)["store_status.csv"] == (9, 5, 4, 0)
    assert [r for r in rows if r[0] == "8002"] == [
        ("8002", 1674645300000000, True), ("8002", 1674647100000000, False)]
    assert ("8001", 1674640800000000, True) in rows  # 10:00, line 6 won


def test_store_ids_stay_text(app, tmp_path):
    folder = write_csv(tmp_path, "store_status.csv", f"""{STATUS_HEADER}
        007,2023-01-25 10:00:00 UTC,active
        18446744073709551616123,2023-01-25 10:00:00 UTC,active
        9007199254740993,2023-01-25 10:00:00 UTC,active""")
    with app.app_context():
        ingest(folder)
        ids = [row[0] for row in table("SELECT store_id FROM store ORDER BY store_id")]
    assert ids == ["007", "18446744073709551616123", "9007199254740993"]


def test_rows_with_wrong_field_count_are_rejected_with_their_line(app, tmp_path):
    folder = write_csv(tmp_path, "store_status.csv", f"""{STATUS_HEADER}
        1,2023-01-25 10:00:00 UTC,active
        2,2023-01-25 10:00:00 UTC
        3,2023-01-25 10:00:00 UTC,active,extra
        4,2023-01-25 10:00:00 UTC,inactive""")
    with app.app_context():
        summary = ingest(folder)
        rows = polls()
    assert counts(summary)["store_status.csv"] == (4, 2, 0, 2)
    assert [(r.line, r.reason) for r in summary.rejections.itertuples()] == [
        (3, "expected 3 fields, found 2"), (4, "expected 3 fields, found 4")]
    assert [r[0] for r in rows] == ["1", "4"]


@pytest.mark.parametrize("name, text, message", [
    ("store_status.csv", "store_id,when,status\n1,2023-01-25 10:00:00,active\n",
     "missing required column(s) timestamp_utc"),
    ("business_hours.csv", "store_id,dayOfWeek,start_time_local\n1,0,09:00\n",
     "missing required column(s) end_time_local"),
    ("store_status.csv", "", "missing required column(s) store_id"),
])
def test_file_without_required_column_fails_whole_ingest(app, tmp_path, name, text, message):
    good = write_csv(tmp_path / "good", "store_status.csv",
                     f"{STATUS_HEADER}\n1,2023-01-25 10:00:00 UTC,active")
    bad = write_csv(tmp_path / "bad", "store_timezone.csv", "store_id,timezone_str\n1,UTC")
    (bad / name).write_text(text)
    with app.app_context():
        ingest(good)
        before = polls(), table("SELECT * FROM store_timezone")
        with pytest.raises(IngestError, match=message.replace("(", r"\(").replace(")", r"\)")):
            ingest(bad)
        # The timezone file of the failed input was not loaded either: one transaction.
        assert (polls(), table("SELECT * FROM store_timezone")) == before
        assert table("SELECT count(*) FROM ingest") == [(1,)]


def test_binary_file_is_not_csv(app, tmp_path):
    (tmp_path / "store_status.csv").write_bytes(bytes(range(256)) * 4)
    with app.app_context(), pytest.raises(IngestError, match="store_status.csv: not a"):
        ingest(tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such file or folder"),
    (lambda p: (p / "notes.txt").write_text("hello") and p, "none of the input files"),
    (lambda p: (p / "x.bin").write_bytes(b"\0\1") and p / "x.bin", "not a zip archive"),
])
def test_unusable_inputs_fail_with_one_line(app, tmp_path, make, message):
    with app.app_context(), pytest.raises(IngestError, match=message) as raised:
        ingest(make(tmp_path))
    assert "\n" not in str(raised.value)


def test_zip_archive_with_folder_inside_and_single_file(app, tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("export/STATUS.CSV", f"{STATUS_HEADER}\n1,2023-01-25 10:00:00 UTC,active\n")
    single = write_csv(tmp_path / "one", "store_status.csv",
                       f"{STATUS_HEADER}\n2,2023-01-25 11:00:00 UTC,inactive") / "store_status.csv"
    with app.app_context():
        ingest(archive)
        ingest(single)
        assert [r[0] for r in polls()] == ["1", "2"]


def test_reingest_accumulates_polls_and_replaces_hours_of_named_stores(app, tmp_path):
    first = write_csv(tmp_path / "first", "store_status.csv", f"""{STATUS_HEADER}
        a,2023-01-25 10:00:00 UTC,active
        b,2023-01-25 10:00:00 UTC,active""")
    write_csv(first, "business_hours.csv", """store_id,dayOfWeek,start_time_local,end_time_local
        a,0,09:00:00,17:00:00
        a,1,09:00:00,17:00:00
        b,0,10:00:00,11:00:00""")
    write_csv(first, "store_timezone.csv", "store_id,timezone_str\na,UTC\nb,UTC")
    second = write_csv(tmp_path / "second", "store_status.csv", f"""{STATUS_HEADER}
        a,2023-01-25 10:00:00 UTC,inactive
        a,2023-01-25 11:00:00 UTC,active""")
    write_csv(second, "business_hours.csv", """store_id,dayOfWeek,start_time_local,end_time_local
        a,2,08:00:00,12:00:00
        a,2,08:00:00,12:00:00""")
    write_csv(second, "timezones.csv", "store_id,timezone_str\na,Asia/Tokyo\na,Europe/Paris")
    with app.app_context():
        ingest(first)
        summary = ingest(second)
        hours = table("SELECT s.store_id, h.day_of_week, h.start_local_s FROM business_hours h "
                      "JOIN store s ON s.id = h.store_pk ORDER BY 1, 2")
        zones = table("SELECT s.store_id, z.timezone_str FROM store_timezone z "
                      "JOIN store s ON s.id = z.store_pk ORDER BY 1")
        rows = polls()
    assert counts(summary) == {"store_status.csv": (2, 1, 1, 0),
                               "business_hours.csv": (2, 1, 1, 0),
                               "timezones.csv": (2, 1, 1, 0)}
    # a's 10:00 poll: the later ingest wins; b is untouched by files that do not name it.
    assert rows == [("a", 1674640800000000, False), ("a", 1674644400000000, True),
                    ("b", 1674640800000000, True)]
    assert hours == [("a", 2, 8 * 3600), ("b", 0, 10 * 3600)]
    assert zones == [("a", "Europe/Paris"), ("b", "UTC")]


def test_real_loop_2023_files_are_all_accounted_for(app, tmp_path):
    # The sample's name is no input alias, so it is copied in as store_status.csv.
    shutil.copy(LOOP_DATA_DIR / "store_status_sample.csv", tmp_path / "store_status.csv")
    for name in ("menu_hours.csv", "timezones.csv"):
        shutil.copy(LOOP_DATA_DIR / name, tmp_path / name)
    with app.app_context():
        summary = ingest(tmp_path)
    files = counts(summary)
    # Data rows of each file: 5032 polls (the last line has no newline), 86198 hours,
    # 13559 zones.
    assert {name: c[0] for name, c in files.items()} == {
        "store_status.csv": 5032, "menu_hours.csv": 86198, "timezones.csv": 13559}
    for read, loaded, duplicate, rejected in files.values():
        assert loaded + duplicate + rejected == read and loaded > 0


def test_ingest_once_skips_data_it_has_loaded(app):
    with app.app_context():
        first = ingest(BUNDLED_DATA, once=True)
        second = ingest(BUNDLED_DATA, once=True)
        assert not first.skipped and second.skipped
        assert table("SELECT count(*) FROM ingest") == [(1,)]


def test_big_files_are_read_in_blocks_with_exact_line_numbers(app, tmp_path, monkeypatch):
    # Blocks of ~2 kB: the 2,000 rows below span dozens of them.
    monkeypatch.setattr(parse, "BLOCK_BYTES", 2000)
    lines = [STATUS_HEADER]
    for n in range(2, 2002):  # n is the line number of the row
        if n % 300 == 0:
            lines.append(f"{n},2023-01-25 10:00:00 UTC")  # a field short
        elif n % 450 == 0:
            lines.append(f"{n},2023-13-25 10:00:00 UTC,active")  # no month 13
        else:
            lines.append(f"{n % 50},2023-01-25 {n // 60 % 24:02d}:{n % 60:02d}:00 UTC,"
                         f"{'active' if n % 7 else 'inactive'}")
    # The same store and instant as line 2 (store 2, 00:02), later in the file: it wins.
    lines.append("2,2023-01-25 00:02:00 UTC,inactive")
    (tmp_path / "store_status.csv").write_text("\n".join(lines) + "\n")
    with app.app_context():
        summary = ingest(tmp_path)
        rows = polls()
    expected_bad = sorted([n for n in range(2, 2002) if n % 300 == 0]
                          + [n for n in range(2, 2002) if n % 450 == 0 and n % 300])
    assert summary.rejections["line"].tolist() == expected_bad
    read, loaded, duplicate, rejected = counts(summary)["store_status.csv"]
    assert (read, rejected) == (2001, len(expected_bad))
    assert duplicate == 1 and loaded == read - rejected - 1
    assert ("2", pd.Timestamp("2023-01-25 00:02", tz="UTC").value // 1000, False) in rows


@pytest.mark.parametrize("order", ["by_hour", "by_store"])
def test_store_ids_of_many_blocks_are_merged_as_they_come(app, tmp_path, monkeypatch, order):
    # Blocks of ~600 bytes (about 15 rows), the blocks' ids merged as soon as as many wait
    # as are listed, the codes gathered in chunks of 7 (a block's codes cross chunks):
    # each poll keeps its own
    # store, whether the file brings every store each hour or one store after another. A
    # rejected row's empty id is not a store.
    monkeypatch.setattr(parse, "BLOCK_BYTES", 600)
    monkeypatch.setattr(load_module._StoreIds, "PENDING", 1)
    monkeypatch.setattr(load_module._Gathered, "CHUNK", 7)
    stores, hours = [f"store-{n:03d}" for n in range(40)], range(12)
    pairs = ([(s, h) for h in hours for s in stores] if order == "by_hour"
             else [(s, h) for s in stores for h in hours])
    rows = [f"{s},2023-01-25 {h:02d}:00:00 UTC,{'active' if (h + len(s)) % 3 else 'inactive'}"
            for s, h in pairs]
    rows.insert(100, ",2023-01-25 01:00:00 UTC,active")
    (tmp_path / "store_status.csv").write_text("\n".join([STATUS_HEADER, *rows]) + "\n")
    with app.app_context():
        summary = ingest(tmp_path)
        stored = sorted(polls())
        named = table("SELECT store_id FROM store ORDER BY store_id")
    expected = sorted((s, pd.Timestamp(f"2023-01-25 {h:02d}:00", tz="UTC").value // 1000,
                       (h + len(s)) % 3 != 0) for s, h in pairs)
    assert stored == expected
    assert [name for (name,) in named] == stores
    assert counts(summary)["store_status.csv"] == (481, 480, 0, 1)


def test_last_of_each_key_keeps_the_row_read_last(app):
    # Reference: pandas' drop_duplicates(keep="last"), then sorted by store and instant.
    rng = np.random.default_rng(7)
    store_pk = rng.integers(1, 30, 5000)
    timestamp_us = rng.integers(0, 40, 5000) * 1_000_000  # many repeats of each key
    expected = (pd.DataFrame({"pk": store_pk, "ts": timestamp_us})
                .drop_duplicates(["pk", "ts"], keep="last").sort_values(["pk", "ts"]).index)
    assert last_of_each_key(store_pk, timestamp_us).tolist() == expected.tolist()


@pytest.mark.parametrize("repeats", [False, True])
def test_sorted_polls_orders_by_store_then_instant_and_keeps_the_last(app, repeats):
    # Reference: pandas' drop_duplicates(keep="last"), then sorted by store and instant;
    # without repeats the packed sort answers, with them the positions decide.
    rng = np.random.default_rng(11)
    store_pk = rng.integers(1, 30, 5000)
    timestamp_us = (rng.integers(0, 40, 5000) * 1_000_000 if repeats
                    else rng.permutation(5000) * 7 - 1_000)
    active = rng.integers(0, 2, 5000).astype(bool)
    expected = (pd.DataFrame({"pk": store_pk, "ts": timestamp_us, "active": active})
                .drop_duplicates(["pk", "ts"], keep="last").sort_values(["pk", "ts"]))
    got = sorted_polls(store_pk, timestamp_us, active)
    assert [column.tolist() for column in got] == [expected[c].tolist() for c in expected]


@pytest.mark.parametrize("text", [
    "2023-01-25 18:13:22.47922 UTC", "2023-01-25 18:13:22 utc", "2023-01-25T18:13:22Z",
    "2023-01-25T18:13:22.123456Z", "2023-01-25 18:13:22", "2023-01-25 18:13:22.1",
    "  2023-01-25 18:13:22.000001UTC ", "2023-01-25T18:13:22+05:30", "2023-01-25T18:13:22-0800",
    "2023-01-25 18:13", "2023-01-25T18:13:22.1234567Z", "1899-12-31 23:59:59",
    "2024-02-29 00:00:00", "2023-02-29 00:00:00", "2023-13-01 00:00:00", "2023-01-25 24:00:00",
    "2023-01-25 23:59:60", "yesterday", "", "2023-01-25 18:13:22 UTC UTC",
])
def test_timestamps_read_in_arrow_as_pandas_reads_them(text):
    # Reference: pandas' ISO 8601 parser on the text without its " UTC" suffix, which is
    # what the service accepted before Arrow read the usual shapes. Each shape runs alone
    # and beside a usual row (one bad date sends a whole block to pandas).
    stripped = re.sub(r"(?i)\s*UTC$", "", text.strip())
    reference = pd.to_datetime(pd.Series([stripped, "2023-01-25 10:00:00"]), format="ISO8601",
                               utc=True, errors="coerce")
    for texts in ([text], [text, "2023-01-25 10:00:00 UTC"]):
        micros, parsed = parse._instants(pc.utf8_trim_whitespace(pa.array(texts)))
        assert bool(parsed[0]) == pd.notna(reference[0])
        if parsed[0]:
            assert micros[0] == reference[0].value // 1000


def test_many_staging_files_then_another_ingest(app, tmp_path, monkeypatch):
    # Every bulk write through a staging file, more of them than SQLite can attach at once
    # (the rest fall back to executemany): each block of ~12 rows has a rejected row to
    # store. The next ingest finds no file left attached.
    monkeypatch.setattr(parse, "BLOCK_BYTES", 500)
    monkeypatch.setattr(bulk, "STAGE_FILE_ROWS", 1)
    rows = [f"{n % 7},2023-01-25 {n // 60 % 24:02d}:{n % 60:02d}:00 UTC,"
            f"{'maybe' if n % 10 == 9 else 'active'}" for n in range(300)]
    first = write_csv(tmp_path / "first", "store_status.csv", "\n".join([STATUS_HEADER, *rows]))
    second = write_csv(tmp_path / "second", "store_status.csv",
                       f"{STATUS_HEADER}\n1,2023-01-25 00:01:00 UTC,inactive\n"
                       "x,2023-01-26 00:00:00 UTC,active")
    with app.app_context():
        assert counts(ingest(first))["store_status.csv"] == (300, 270, 0, 30)
        assert counts(ingest(second))["store_status.csv"] == (2, 1, 1, 0)
        stored = polls()
        attached = table("PRAGMA database_list") if db.engine.dialect.name == "sqlite" else []
        rejected = table("SELECT count(*) FROM ingest_rejection")
    # 270 distinct (store, minute) pairs, plus x; store 1's 00:01 poll is now inactive.
    assert len(stored) == 271 and ("1", 1674604860000000, False) in stored
    assert rejected == [(30,)]
    assert not [row[1] for row in attached if row[1].startswith("ingest_staging")]


def test_rows_staged_in_parts_load_in_order(app, tmp_path, monkeypatch):
    # Parts of at least 5 rows: the 40 polls of each file go to SQLite in 4 staged parts
    # (PostgreSQL stages them at once). The second file repeats every other poll of the
    # first with the opposite status and adds 20 new ones: 20 loaded, 20 duplicates, and
    # the repeated polls take the second file's status.
    monkeypatch.setattr(bulk, "STAGE_PART_ROWS", 5)
    first = [(store, minute, "active") for store in range(4) for minute in range(10)]
    second = ([(store, minute, "inactive") for store, minute, _ in first[::2]]
              + [(store, minute, "active") for store in range(4, 6) for minute in range(10)])
    with app.app_context():
        loaded = []
        for number, rows in enumerate((first, second)):
            folder = write_csv(tmp_path / str(number), "store_status.csv", STATUS_HEADER + "".join(
                f"\n{store},2023-01-25 10:{minute:02d}:00 UTC,{status}"
                for store, minute, status in rows))
            loaded.append(counts(ingest(folder))["store_status.csv"])
        rows = polls()
    assert loaded == [(40, 40, 0, 0), (40, 20, 20, 0)]
    start = 1674640800000000  # 2023-01-25 10:00 UTC
    expected = {(str(store), start + minute * 60_000_000, True) for store, minute, _ in first}
    expected = {row if (row[1] - start) // 60_000_000 % 2 else (row[0], row[1], False)
                for row in expected}
    expected |= {(str(store), start + minute * 60_000_000, True)
                 for store in range(4, 6) for minute in range(10)}
    assert sorted(rows) == sorted(expected)


POLL_COLUMNS = ["hour", "store_pk", "timestamp_us", "active"]


@pytest.mark.skipif(TEST_DATABASE != "sqlite", reason="SQLite's staging files (PostgreSQL "
                    "stages by COPY)")
def test_schedules_and_rejections_leave_the_polls_their_staging_files(app, tmp_path,
                                                                       monkeypatch):
    # Every table staged through files (from 1 row, parts of 5), and the status file read
    # in blocks of ~600 bytes, each with a rejected row to store: hours, zones, stores and
    # rejections leave MAX_STAGE_PARTS files, so the polls of the same ingest go in parts,
    # never through Python row tuples.
    monkeypatch.setattr(bulk, "STAGE_FILE_ROWS", 1)
    monkeypatch.setattr(bulk, "STAGE_PART_ROWS", 5)
    monkeypatch.setattr(parse, "BLOCK_BYTES", 600)
    by_rows, in_files = [], []
    by_rows_of, in_file = bulk._staged_by_executemany, bulk._staging_file
    monkeypatch.setattr(bulk, "_staged_by_executemany", lambda conn, names, columns: (
        by_rows.append(list(names)), by_rows_of(conn, names, columns))[1])
    monkeypatch.setattr(bulk, "_staging_file", lambda path, names, columns, rows=None: (
        in_files.append(list(names)), in_file(path, names, columns, rows))[1])
    stores = range(30)
    write_csv(tmp_path, "store_hours.csv", "store_id,dayOfWeek,start_time_local,end_time_local"
              + "".join(f"\n{s},{d},09:00:00,17:00:00" for s in stores for d in range(7)))
    write_csv(tmp_path, "timezones.csv", "store_id,timezone_str"
              + "".join(f"\n{s},America/Chicago" for s in stores))
    write_csv(tmp_path, "store_status.csv", STATUS_HEADER + "".join(
        f"\n{s},2023-01-25 {h:02d}:00:00 UTC,{'maybe' if s == 0 else 'active'}"
        for h in range(24) for s in stores))
    with app.app_context():
        summary = ingest(tmp_path)
        stored = table("SELECT count(*) FROM store_status")
    assert counts(summary)["store_status.csv"] == (720, 696, 0, 24)
    assert stored == [(696,)]
    assert POLL_COLUMNS not in by_rows
    assert in_files.count(POLL_COLUMNS) == bulk.MAX_STAGE_PARTS
    assert ["ingest_id", "file", "line", "reason"] in by_rows  # past the others' share


def test_without_staging_files_rows_go_in_bounded_chunks(app, tmp_path, monkeypatch):
    # No staging file left (as when a transaction has attached SQLite's limit): rows go
    # through a temporary table CHUNK_ROWS at a time, all of them, in order.
    monkeypatch.setattr(bulk, "MAX_STAGING_FILES", 0)
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 7)
    taken, rows_of = [], bulk._rows
    monkeypatch.setattr(bulk, "_rows", lambda column, low, high: (
        taken.append(high - low), rows_of(column, low, high))[1])
    rows = [(store, minute) for store in range(5) for minute in range(20)]
    folder = write_csv(tmp_path, "store_status.csv", STATUS_HEADER + "".join(
        f"\n{store},2023-01-25 10:{minute:02d}:00 UTC,{'active' if minute % 3 else 'inactive'}"
        for store, minute in rows))
    with app.app_context():
        assert counts(ingest(folder))["store_status.csv"] == (100, 100, 0, 0)
        stored = polls()
    start = 1674640800000000  # 2023-01-25 10:00 UTC
    assert stored == sorted((str(store), start + minute * 60_000_000, minute % 3 != 0)
                            for store, minute in rows)
    assert max(taken) == 7  # the 100 polls (and 5 stores) a chunk of 7 at a time
