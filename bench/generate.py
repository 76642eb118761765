"""A realistic synthetic data set: hourly polls with jitter, missed polls and outages;
business hours of several shapes; US and a few foreign zones; stores without hours or zone.

Everything is drawn from one seeded generator with whole-array operations, so the same
arguments always give the same files, and 100,000 stores take seconds.

    python -m bench.generate OUT [--stores N] [--days D] [--seed S] [--end INSTANT]
"""

import time
import uuid
import zipfile
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

_ZONES = {  # zone name -> share of stores
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


def generate_dataset(stores, days, seed=0, end=DEFAULT_END):
    """Draw a data set of `stores` stores polled about hourly for `days` days up to `end`."""
    rng = np.random.default_rng(seed)
    store_ids = _store_ids(rng, stores)
    end_us = pd.Timestamp(end).value // 1000  # .value is in nanoseconds
    return Dataset(status=_polls(rng, store_ids, days, end_us),
                   hours=_hours(rng, store_ids), timezones=_timezones(rng, store_ids))


def _store_ids(rng, count):
    """Mostly 19-digit decimal ids like the original data set's, some UUIDs."""
    ids = rng.integers(10**18, 2**63 - 1, size=count, dtype=np.int64).astype(str).astype(object)
    as_uuid = np.flatnonzero(rng.random(count) < 0.03)
    ids[as_uuid] = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in as_uuid]
    return ids


def next_hours(stores, seed=0, end=DEFAULT_END, hours=1):
    """The polls of `hours` hours after a data set of `generate_dataset(stores, _, seed, end)`:
    one poll per store and hour, at a random instant of each hour, the same store ids; about
    one in a hundred inactive. A `Dataset` whose hours and zones are empty (the hourly feed
    brings only a status file: `write_status`)."""
    rng = np.random.default_rng(seed)
    store_ids = _store_ids(rng, stores)  # the first draw, as in `generate_dataset`
    extra = np.random.default_rng([seed, hours])
    end_us = pd.Timestamp(end).value // 1000
    hour = np.repeat(np.arange(hours), stores)
    instant = end_us + hour * HOUR_S * 10**6 + extra.integers(1, HOUR_S * 10**6, len(hour))
    store = np.tile(np.arange(stores), hours)
    return Dataset(status=pd.DataFrame({"store_id": store_ids[store], "timestamp_us": instant,
                                        "active": extra.random(len(hour)) > 0.01}),
                   hours=pd.DataFrame(), timezones=pd.DataFrame())


def write_status(dataset, out):
    """Write only `store_status.csv` of `dataset` into the folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "store_status.csv", "wb") as stream:
        _write_csv(_status_table(dataset.status), stream)


def _polls(rng, store_ids, days, end_us):
    n_stores, per_store = len(store_ids), days * 24
    store = np.repeat(np.arange(n_stores), per_store)
    slot = np.tile(np.arange(per_store), n_stores)
    phase_s = rng.uniform(0, HOUR_S, n_stores)[store]
    jitter_s = np.clip(rng.normal(0, 90, len(store)), -600, 600)
    offset_s = (slot - per_store) * HOUR_S + phase_s + jitter_s
    instant = end_us + np.round(offset_s * 1e6).astype(np.int64)

    # Outages: runs of inactive polls, about two a week per store, 1-8 polls long.
    n_outages = rng.poisson(2 * days / 7, n_stores)
    outage_store = np.repeat(np.arange(n_stores), n_outages)
    first = rng.integers(0, per_store, len(outage_store))
    length = np.minimum(rng.geometric(0.35, len(outage_store)), 8)
    covered = np.repeat(first, length) + (np.arange(length.sum())
                                          - np.repeat(np.cumsum(length) - length, length))
    flat = np.repeat(outage_store, length) * per_store + covered
    active = rng.random(len(store)) > 0.01  # the odd flaky poll
    active[flat[covered < per_store]] = False

    # Missed polls, and a few stores that are in the hours files but never polled.
    polled_store = rng.random(n_stores) > 0.01
    keep = (rng.random(len(store)) > 0.04) & polled_store[store] & (instant <= end_us)
    keep[np.searchsorted(store, np.flatnonzero(polled_store)) + per_store - 1] = True
    order = rng.permutation(int(keep.sum()))
    return pd.DataFrame({"store_id": store_ids[store[keep]][order],
                         "timestamp_us": np.minimum(instant[keep], end_us)[order],
                         "active": active[keep][order]})


def _hours(rng, store_ids):
    """Each store takes one weekly shape, shifted by a few quarter hours."""
    shapes, shares = zip(*_SHAPES)
    shape = rng.choice(len(shapes), size=len(store_ids), p=np.array(shares) / sum(shares))
    template = np.array([(i, *row) for i, rows in enumerate(shapes) for row in rows])
    first_row = np.searchsorted(template[:, 0], np.arange(len(shapes)))
    row_count = np.bincount(template[:, 0], minlength=len(shapes))
    count = row_count[shape]
    store = np.repeat(np.arange(len(store_ids)), count)
    row = first_row[shape][store] + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count,
                                                                          count))
    shift_s = (rng.integers(-2, 3, len(store_ids)) * 900)[store]
    start, end = template[row, 2], template[row, 3]
    # Keep midnight-anchored rows (00:00, 23:59:59) as they are: shifting them is not realistic.
    movable = (start != 0) & (end != 86_399)
    start = np.where(movable, (start + shift_s) % 86_400, start)
    end = np.where(movable, (end + shift_s) % 86_400, end)
    return pd.DataFrame({"store_id": store_ids[store], "day_of_week": template[row, 1],
                         "start_s": start, "end_s": end})


def _timezones(rng, store_ids):
    names, shares = zip(*_ZONES.items())
    zone = np.array(names, dtype=object)[rng.choice(len(names), size=len(store_ids),
                                                    p=np.array(shares) / sum(shares))]
    listed = zone != ""
    return pd.DataFrame({"store_id": store_ids[listed], "timezone_str": zone[listed]})


def _time_text(seconds):
    seconds = np.asarray(seconds, dtype=np.int64)
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
                    ).take(pa.array(seconds))


def _status_table(status):
    """Timestamps as the original data set writes them, with a few in ISO 8601 form."""
    text = pa.array(np.datetime_as_string(status["timestamp_us"].to_numpy().view("datetime64[us]"),
                                          unit="us"))
    spaced = pc.binary_join_element_wise(pc.replace_substring(text, "T", " "), " UTC", "")
    iso = pa.array(np.arange(len(status)) % 100 == 0)
    stamp = pc.if_else(iso, pc.binary_join_element_wise(text, "Z", ""), spaced)
    state = np.where(status["active"].to_numpy(), "active", "inactive")
    return pa.table({"store_id": pa.array(status["store_id"], pa.string()),
                     "timestamp_utc": stamp, "status": pa.array(state)})


def write_dataset(dataset, out):
    """Write the three CSV files into a zip archive (`out` ends in .zip) or a folder."""
    tables = {
        "store_status.csv": _status_table(dataset.status),
        "business_hours.csv": pa.table({
            "store_id": pa.array(dataset.hours["store_id"], pa.string()),
            "dayOfWeek": pa.array(dataset.hours["day_of_week"].to_numpy()),
            "start_time_local": _time_text(dataset.hours["start_s"]),
            "end_time_local": _time_text(dataset.hours["end_s"])}),
        "store_timezone.csv": pa.table({
            "store_id": pa.array(dataset.timezones["store_id"], pa.string()),
            "timezone_str": pa.array(dataset.timezones["timezone_str"], pa.string())}),
    }
    out = Path(out)
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, table in tables.items():
                with archive.open(name, "w") as stream:
                    _write_csv(table, stream)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            with open(out / name, "wb") as stream:
                _write_csv(table, stream)


def _write_csv(table, stream):
    """Plain CSV as the original files are: an unquoted header, no quotes anywhere."""
    stream.write((",".join(table.column_names) + "\n").encode())
    pacsv.write_csv(table, stream, pacsv.WriteOptions(include_header=False,
                                                      quoting_style="none"))


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
    try:
        pd.Timestamp(end)
    except (ValueError, TypeError, OverflowError):
        raise click.ClickException(f"--end {end!r} is not an instant (such as "
                                   f"'{DEFAULT_END}')") from None
    if out.exists() and not force and (out.is_file() or any(out.iterdir())):
        raise click.ClickException(f"{out} exists; --force replaces it")
    began = time.perf_counter()
    dataset = generate_dataset(stores, days, seed, end)
    write_dataset(dataset, out)
    click.echo(f"{len(dataset.status)} polls of {stores} stores written to {out} "
               f"in {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
