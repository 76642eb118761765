"""A realistic synthetic data set: hourly polls with jitter, missed polls and outages;
business hours of several shapes; US and a few foreign zones; stores without hours or zone.

The stores are drawn in groups (`GROUP_POLLS` polls at a time), each from a generator seeded
with the seed and the group's number, with whole-array operations. `write_streamed` writes
each group while the next one is drawn, and then lets it go, so memory stays bounded by
two groups however many stores there are; the same arguments always give the same bytes.

    python -m bench.generate OUT [--stores N] [--days D] [--seed S] [--end INSTANT]
"""

import collections
import functools
import itertools
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

DEFAULT_END = "2023-01-25 18:00:00"
HOUR_S = 3600
HOUR_US = HOUR_S * 10**6
# Polls drawn at once: a group is as many stores as make this many polls (10,416 stores at
# 8 days). Drawing one group while the one before is written holds some 100 bytes a poll;
# 4 million polls a group gave 600 MB resident, 2 million 350-450 MB.
GROUP_POLLS = 2_000_000
WRITE_ROWS = 100_000  # rows turned into text at once while writing a group
UUID_SHARE = 0.03

# Streams of random numbers, one per purpose: [seed, purpose, number].
_IDS, _POLLS, _HOURS, _ZONES, _NEXT = 1, 2, 3, 4, 5

_ZONES_SHARE = {  # zone name -> share of stores
    "America/Chicago": 0.32, "America/New_York": 0.30, "America/Los_Angeles": 0.15,
    "America/Denver": 0.07, "America/Phoenix": 0.03, "America/Boise": 0.02,
    "America/Indiana/Indianapolis": 0.02, "America/Detroit": 0.02, "Europe/London": 0.01,
    "Asia/Beirut": 0.01, "Australia/Sydney": 0.01, "Asia/Kolkata": 0.01,
    "Pacific/Honolulu": 0.01,
    "": 0.015,  # no timezone row
    "Mars/Olympus_Mons": 0.005,  # a name that is no zone
}


def _hhmm(text):
    hours, minutes, *seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + (seconds[0] if seconds else 0)


def _every_day(start, end, days=range(7)):
    return [(day, _hhmm(start), _hhmm(end)) for day in days]


# Weekly shapes of business hours: (weekday, start s, end s) rows, and the share of stores.
_SHAPES = [
    ([], 0.10),  # no rows: open 24x7
    (_every_day("10:00", "22:00"), 0.22),
    (_every_day("11:00", "21:00", range(5)) + _every_day("09:00", "23:00", (5, 6)), 0.15),
    (_every_day("18:00", "02:00"), 0.06),  # overnight
    (_every_day("11:00", "14:00") + _every_day("17:00", "22:00"), 0.10),  # split shifts
    (_every_day("08:00", "20:00", range(1, 7)), 0.10),  # closed on Mondays
    (_every_day("00:00:00", "23:59:59"), 0.07),  # 23:59:59 means midnight
    (_every_day("00:00", "00:00"), 0.05),  # start == end: 24 hours
    (_every_day("10:00", "23:00", range(4)) + _every_day("10:00", "03:00", (4, 5))
     + _every_day("12:00", "22:00", (6,)), 0.10),  # late on weekends
    (_every_day("06:30", "15:00", range(5)), 0.05),  # weekday breakfast and lunch
]


@dataclass
class Dataset:
    status: pd.DataFrame  # store_id, timestamp_us, active
    hours: pd.DataFrame  # store_id, day_of_week, start_s, end_s
    timezones: pd.DataFrame  # store_id, timezone_str


# --- Store ids ---------------------------------------------------------------------------

def store_ids(stores, seed=0):
    """The stores' ids as bytes ('S36'): 19-digit decimals like the original data set's and
    about 3% UUIDs, all distinct. Drawn for the whole set at once from a stream of their own,
    so every group, whatever its size, and `next_hours` name the same stores."""
    rng = np.random.default_rng([seed, _IDS])
    ids = _draw_ids(rng, stores)
    while True:  # a repeat is unlikely (some 1e-7 at a million stores); draw it again
        _, first = np.unique(ids, return_index=True)
        if len(first) == stores:
            return ids
        again = np.setdiff1d(np.arange(stores), first)
        ids[again] = _draw_ids(rng, len(again))


def _draw_ids(rng, count):
    ids = rng.integers(10**18, 2**63 - 1, size=count, dtype=np.int64).astype("S36")
    as_uuid = np.flatnonzero(rng.random(count) < UUID_SHARE)
    ids[as_uuid] = _uuid4_text(rng, len(as_uuid))
    return ids


_UUID_DIGITS = [i for i in range(36) if i not in (8, 13, 18, 23)]  # the rest are dashes


def _uuid4_text(rng, count):
    """Random (version 4) UUIDs in their 36-character form, built as an array of bytes."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = raw[:, 6] & 0x0F | 0x40  # version 4
    raw[:, 8] = raw[:, 8] & 0x3F | 0x80  # the RFC 4122 variant
    nibbles = np.stack([raw >> 4, raw & 0x0F], axis=2).reshape(count, 32)
    text = np.full((count, 36), ord("-"), np.uint8)
    text[:, _UUID_DIGITS] = np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles]
    return text.view("S36").ravel()


def _id_text(ids):
    return pa.array(ids).cast(pa.string())


# --- Drawing, one group of stores at a time ----------------------------------------------

def group_size(days, group_stores=None):
    """Stores per group: `group_stores`, or as many as make `GROUP_POLLS` polls."""
    return group_stores or max(1, GROUP_POLLS // (24 * days))


def _groups(stores, size):
    """(group number, first store, store count) of each group."""
    for group, first in enumerate(range(0, stores, size)):
        yield group, first, min(size, stores - first)


def _end_us(end):
    return pd.Timestamp(end).value // 1000  # .value is in nanoseconds


def _group_polls(seed, group, count, days, end_us):
    """The polls of `count` stores, shuffled: (store within the group, instant µs, active).
    Hourly at a phase of each store's own, with jitter; runs of inactive polls (outages) and
    the odd flaky poll; 4% missed, and 1% of the stores never polled."""
    rng = np.random.default_rng([seed, _POLLS, group])
    per_store = days * 24
    n = count * per_store
    store = np.repeat(np.arange(count, dtype=np.int32), per_store)
    # In place where it can be: this is the largest part of the memory the generator needs.
    offset_s = np.tile(np.arange(-per_store, 0, dtype=np.float64) * HOUR_S, count)
    offset_s += rng.uniform(0, HOUR_S, count)[store]
    jitter_s = rng.normal(0, 90, n)
    offset_s += np.clip(jitter_s, -600, 600, out=jitter_s)
    del jitter_s
    offset_s *= 1e6
    instant = np.round(offset_s, out=offset_s).astype(np.int64)
    del offset_s
    instant += end_us

    # Outages: about two a week per store, 1-8 polls long.
    n_outages = rng.poisson(2 * days / 7, count)
    outage_store = np.repeat(np.arange(count), n_outages)
    first = rng.integers(0, per_store, len(outage_store))
    length = np.minimum(rng.geometric(0.35, len(outage_store)), 8)
    covered = np.repeat(first, length) + (np.arange(length.sum())
                                          - np.repeat(np.cumsum(length) - length, length))
    flat = np.repeat(outage_store * per_store, length) + covered
    active = rng.random(n, dtype=np.float32) > 0.01  # the odd flaky poll
    active[flat[covered < per_store]] = False

    # Missed polls, and stores that are in the hours files but never polled. A polled store
    # keeps its last poll (at `end` at the latest), so every data set ends at `end`.
    polled = rng.random(count) > 0.01
    keep = rng.random(n, dtype=np.float32) > 0.04
    keep &= polled[store]
    keep &= instant <= end_us
    keep[np.flatnonzero(polled) * per_store + per_store - 1] = True
    kept = np.flatnonzero(keep)
    del keep
    rng.shuffle(kept)  # so a file is not sorted
    return store[kept], np.minimum(instant[kept], end_us), active[kept]


def _group_hours(seed, group, count):
    """Each store takes one weekly shape, shifted by a few quarter hours:
    (store within the group, weekday, start s, end s)."""
    rng = np.random.default_rng([seed, _HOURS, group])
    shapes, shares = zip(*_SHAPES)
    shape = rng.choice(len(shapes), size=count, p=np.array(shares) / sum(shares))
    template = np.array([(i, *row) for i, rows in enumerate(shapes) for row in rows])
    first_row = np.searchsorted(template[:, 0], np.arange(len(shapes)))
    rows = np.bincount(template[:, 0], minlength=len(shapes))[shape]
    store = np.repeat(np.arange(count), rows)
    row = first_row[shape][store] + (np.arange(rows.sum())
                                     - np.repeat(np.cumsum(rows) - rows, rows))
    shift_s = (rng.integers(-2, 3, count) * 900)[store]
    start, end = template[row, 2], template[row, 3]
    # Keep midnight-anchored rows (00:00, 23:59:59) as they are: shifting them is not realistic.
    movable = (start != 0) & (end != 86_399)
    start = np.where(movable, (start + shift_s) % 86_400, start)
    end = np.where(movable, (end + shift_s) % 86_400, end)
    return store, template[row, 1], start, end


_ZONE_NAMES = np.array(list(_ZONES_SHARE), dtype=object)


def _group_zones(seed, group, count):
    """(store within the group, zone name) of the stores with a zone row."""
    rng = np.random.default_rng([seed, _ZONES, group])
    shares = np.array(list(_ZONES_SHARE.values()))
    zone = rng.choice(len(_ZONE_NAMES), size=count, p=shares / shares.sum())
    listed = np.flatnonzero(_ZONE_NAMES[zone] != "")
    return listed, _ZONE_NAMES[zone[listed]]


# --- Small sets in memory ----------------------------------------------------------------

def generate_dataset(stores, days, seed=0, end=DEFAULT_END, group_stores=None):
    """Draw a data set of `stores` stores polled about hourly for `days` days up to `end`,
    whole, as pandas frames: for sets that fit in memory (`write_streamed` for others).
    The same groups as `write_streamed`'s, so both write the same bytes."""
    ids = store_ids(stores, seed).astype(str).astype(object)
    end_us = _end_us(end)
    status, hours, zones = [], [], []
    for group, first, count in _groups(stores, group_size(days, group_stores)):
        own = ids[first:first + count]
        store, instant, active = _group_polls(seed, group, count, days, end_us)
        status.append(pd.DataFrame({"store_id": own[store], "timestamp_us": instant,
                                    "active": active}))
        store, day, start, stop = _group_hours(seed, group, count)
        hours.append(pd.DataFrame({"store_id": own[store], "day_of_week": day,
                                   "start_s": start, "end_s": stop}))
        store, zone = _group_zones(seed, group, count)
        zones.append(pd.DataFrame({"store_id": own[store], "timezone_str": zone}))
    return Dataset(status=pd.concat(status, ignore_index=True),
                   hours=pd.concat(hours, ignore_index=True),
                   timezones=pd.concat(zones, ignore_index=True))


def next_hours(stores, seed=0, end=DEFAULT_END, hours=1):
    """The polls of `hours` hours after a data set of `stores` stores, `seed` and `end`:
    one poll per store and hour, at a random instant of each hour, the same store ids; about
    one in a hundred inactive. Hour by hour, then store by store; each hour is drawn on its
    own, so it is the same however many hours are asked for. A `Dataset` whose hours and
    zones are empty (the hourly feed brings only a status file: `write_status`)."""
    ids = store_ids(stores, seed).astype(str).astype(object)
    end_us = _end_us(end)
    frames = []
    for hour in range(hours):
        rng = np.random.default_rng([seed, _NEXT, hour])
        frames.append(pd.DataFrame({
            "store_id": ids,
            "timestamp_us": end_us + hour * HOUR_US + rng.integers(1, HOUR_US, stores),
            "active": rng.random(stores) > 0.01}))
    return Dataset(status=pd.concat(frames, ignore_index=True), hours=pd.DataFrame(),
                   timezones=pd.DataFrame())


# --- Writing -----------------------------------------------------------------------------

@functools.cache
def _day_times():
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)])


def _status_table(store_id, instant_us, active):
    """Timestamps as the original data set writes them, with about one in a hundred (those
    whose microseconds end in 01: not `end`, where the last polls are cut) in ISO 8601."""
    instant_us = np.asarray(instant_us, dtype=np.int64)
    text = pc.cast(pa.array(instant_us.view("datetime64[us]")), pa.string())
    iso = pa.array(instant_us % 100 == 1)
    stamp = pc.replace_with_mask(
        pc.binary_join_element_wise(text, " UTC", ""), iso,
        pc.binary_join_element_wise(pc.replace_substring(text.filter(iso), " ", "T"), "Z", ""))
    return pa.table({"store_id": store_id, "timestamp_utc": stamp,
                     "status": pc.if_else(pa.array(np.asarray(active, dtype=bool)),
                                          "active", "inactive")})


def _group_status_table(ids, store, instant_us, active):
    return _status_table(ids.take(store), instant_us, active)


def _hours_table(store_id, day, start_s, end_s):
    return pa.table({"store_id": store_id,
                     "dayOfWeek": pa.array(np.asarray(day, dtype=np.int64)),
                     "start_time_local": _day_times().take(pa.array(start_s)),
                     "end_time_local": _day_times().take(pa.array(end_s))})


def _zones_table(store_id, zone):
    return pa.table({"store_id": store_id, "timezone_str": pa.array(zone, pa.string())})


def _frame_tables(dataset):
    """The three files' tables of a `Dataset`."""
    status, hours, zones = dataset.status, dataset.hours, dataset.timezones
    return {
        "store_status.csv": [_status_table(pa.array(status["store_id"], pa.string()),
                                           status["timestamp_us"], status["active"])],
        "business_hours.csv": [_hours_table(pa.array(hours["store_id"], pa.string()),
                                            hours["day_of_week"], hours["start_s"],
                                            hours["end_s"])],
        "store_timezone.csv": [_zones_table(pa.array(zones["store_id"], pa.string()),
                                            zones["timezone_str"])],
    }


def write_dataset(dataset, out):
    """Write the three CSV files of `dataset` into a zip archive (`out` ends in .zip) or a
    folder."""
    _write_files(out, _frame_tables(dataset),
                 zip64=_may_be_large(len(dataset.status), len(dataset.hours)))


def write_status(dataset, out):
    """Write only `store_status.csv` of `dataset` into the folder `out`."""
    status = dataset.status
    _write_files(out, {"store_status.csv": [_status_table(
        pa.array(status["store_id"], pa.string()), status["timestamp_us"], status["active"])]})


def write_streamed(out, stores, days, seed=0, end=DEFAULT_END, group_stores=None):
    """Write the data set of `generate_dataset(stores, days, seed, end, group_stores)`, the
    same bytes, drawing each group of stores while the one before is written: memory is
    bounded by two groups (`GROUP_POLLS`), not by the size of the set. Returns the number
    of polls written."""
    ids = _id_text(store_ids(stores, seed))
    end_us = _end_us(end)
    groups = list(_groups(stores, group_size(days, group_stores)))

    def status():
        # Two threads: the next group is drawn, and rows turned into text, while the main
        # thread writes (numpy and Arrow let go of the GIL); results are taken in order.
        with ThreadPoolExecutor(2) as pool:
            drawn = _in_order(pool, (functools.partial(_group_polls, seed, group, count, days,
                                                       end_us) for group, _, count in groups))
            for (_, first, count), (store, instant, active) in zip(groups, drawn):
                own = ids.slice(first, count)
                yield from _in_order(pool, (
                    functools.partial(_group_status_table, own, store[lo:lo + WRITE_ROWS],
                                      instant[lo:lo + WRITE_ROWS], active[lo:lo + WRITE_ROWS])
                    for lo in range(0, max(len(store), 1), WRITE_ROWS)), ahead=2)
                del store, instant, active, own  # let the group go before asking for more

    def hours():
        for group, first, count in groups:
            store, day, start, stop = _group_hours(seed, group, count)
            yield _hours_table(ids.slice(first, count).take(store), day, start, stop)

    def zones():
        for group, first, count in groups:
            store, zone = _group_zones(seed, group, count)
            yield _zones_table(ids.slice(first, count).take(store), zone)

    rows = _write_files(out, {"store_status.csv": status(), "business_hours.csv": hours(),
                              "store_timezone.csv": zones()},
                        zip64=_may_be_large(stores * days * 24, stores * 14))
    return rows["store_status.csv"]


def _may_be_large(polls, hours_rows):
    """Whether a file could pass 2 GiB, which needs ZIP64 fields in an archive: a size not
    known while a member is written (poll lines are at most 77 bytes, hours lines 62)."""
    return max(polls * 80, hours_rows * 80) >= zipfile.ZIP64_LIMIT


def _in_order(pool, calls, ahead=1):
    """The results of `calls`, in order, run in `pool` with up to `ahead` more running while
    the caller uses one."""
    running = collections.deque()
    for call in calls:
        running.append(pool.submit(call))
        if len(running) > ahead:
            yield running.popleft().result()
    while running:
        yield running.popleft().result()


_MEMBER_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed instant, so an archive is the same bytes


def _write_files(out, files, zip64=False):
    """Write each file's tables (an iterable, drawn while written) as CSV into a zip archive
    (`out` ends in .zip) or a folder. Written under a `.part` name and renamed when whole,
    so an interrupted run leaves no file that looks complete (store_status.csv, which the
    benchmarks test for, renamed last). Returns the rows written per file."""
    out = Path(out)
    rows, done = {}, []  # done: (part, final) of every file begun
    try:
        if out.suffix.lower() == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            part = out.with_name(out.name + ".part")
            done.append((part, out))
            with zipfile.ZipFile(part, "w") as archive:
                for name, tables in files.items():
                    member = zipfile.ZipInfo(name, date_time=_MEMBER_TIME)
                    member.compress_type = zipfile.ZIP_DEFLATED
                    member.external_attr = 0o644 << 16
                    with archive.open(member, "w", force_zip64=zip64) as stream:
                        rows[name] = _write_csv(tables, stream)
        else:
            out.mkdir(parents=True, exist_ok=True)
            for name, tables in files.items():
                part = out / (name + ".part")
                done.append((part, out / name))
                with open(part, "wb") as stream:
                    rows[name] = _write_csv(tables, stream)
    except BaseException:
        for part, _ in done:
            part.unlink(missing_ok=True)
        raise
    for part, final in sorted(done, key=lambda pair: pair[1].name == "store_status.csv"):
        os.replace(part, final)
    return rows


def _write_csv(tables, stream):
    """Plain CSV as the original files are: an unquoted header, no quotes anywhere."""
    tables = iter(tables)
    first = next(tables)
    stream.write((",".join(first.column_names) + "\n").encode())
    rows = 0
    with pacsv.CSVWriter(stream, first.schema, write_options=pacsv.WriteOptions(
            include_header=False, quoting_style="none")) as writer:
        for table in itertools.chain([first], tables):
            writer.write_table(table)
            rows += table.num_rows
    return rows


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--stores", default=300, show_default=True, help="Number of stores.")
@click.option("--days", default=8, show_default=True, help="Days of hourly polls.")
@click.option("--seed", default=0, show_default=True, help="Seed: same seed, same data.")
@click.option("--end", default=DEFAULT_END, show_default=True,
              help="UTC instant the polls end at.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def main(out, stores, days, seed, end, force):
    """Write a realistic data set (a .zip archive, or a folder otherwise)."""
    # Mistakes are one line and exit status 1, never a traceback.
    if stores < 1 or days < 1:
        raise click.ClickException("--stores and --days must be at least 1")
    if seed < 0:
        raise click.ClickException("--seed must be at least 0")
    try:
        _end_us(end)
    except (ValueError, TypeError, OverflowError):
        raise click.ClickException(f"--end {end!r} is not an instant (such as "
                                   f"'{DEFAULT_END}')") from None
    if out.exists() and not force and (out.is_file() or any(out.iterdir())):
        raise click.ClickException(f"{out} exists; --force replaces it")
    try:  # jemalloc gives freed memory back; mimalloc's resident size crept up group by group
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without it
        pass
    began = time.perf_counter()
    try:
        polls = write_streamed(out, stores, days, seed, end)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error}") from None
    click.echo(f"{polls} polls of {stores} stores written to {out} "
               f"in {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
