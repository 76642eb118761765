"""The data generator of bench/ (`python -m bench.generate`), a development tool."""

import subprocess
import sys
import uuid
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import PROJECT_DIR

from bench import generate
from bench.generate import main

FILES = ("store_status.csv", "business_hours.csv", "store_timezone.csv")
END_US = pd.Timestamp(generate.DEFAULT_END).value // 1000
HOUR_US = 3600 * 10**6


def run_main(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result


def read_folder(folder):
    return (pd.read_csv(folder / "store_status.csv", dtype=str),
            pd.read_csv(folder / "business_hours.csv", dtype=str),
            pd.read_csv(folder / "store_timezone.csv", dtype=str, keep_default_na=False))


def file_bytes(folder):
    return {name: (folder / name).read_bytes() for name in FILES}


def test_generated_data_is_reproducible_and_has_every_shape(tmp_path):
    for name in ("a.zip", "b.zip"):
        run_main(tmp_path / name, "--stores", 400, "--days", 3, "--seed", 7)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        assert sorted(z.namelist()) == sorted(FILES)

    folder = tmp_path / "plain"
    run_main(folder, "--stores", 400, "--days", 3)
    status, hours, zones = read_folder(folder)
    polled = set(status["store_id"])
    # 3 days of hourly slots is 72 polls per store, each missed with probability 0.04:
    # about 69 per store; the lower bound leaves room for chance.
    per_store = status.groupby("store_id").size()
    assert 55 <= per_store.median() <= 72
    assert set(status["status"]) == {"active", "inactive"}
    assert len(polled - set(hours["store_id"])) > 0, "some stores have no hours (24x7)"
    assert len(polled - set(zones["store_id"])) > 0, "some stores have no timezone row"
    assert (hours["end_time_local"] < hours["start_time_local"]).any(), "overnight hours"
    assert (hours.groupby(["store_id", "dayOfWeek"]).size() > 1).any(), "split shifts"
    assert (hours["end_time_local"] == "23:59:59").any()
    assert zones["timezone_str"].str.startswith(("Europe/", "Asia/", "Australia/")).any()
    assert not list(folder.glob("*.part"))


def test_runs_as_a_module_and_says_what_it_wrote(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.generate", str(tmp_path / "d.zip"),
                           "--stores", "20", "--days", "2"], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "of 20 stores written to" in done.stdout
    with zipfile.ZipFile(tmp_path / "d.zip") as z:
        assert sorted(z.namelist()) == ["business_hours.csv", "store_status.csv",
                                        "store_timezone.csv"]


def test_a_negative_seed_is_one_line(tmp_path):
    result = CliRunner().invoke(main, [str(tmp_path / "x"), "--seed", "-1"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --seed must be at least 0"


STORES, DAYS, GROUP = 1000, 3, 50  # 20 groups


@pytest.fixture(scope="module")
def many_groups(tmp_path_factory):
    """A set written group by group, 50 stores a group, and what it was made of."""
    folder = tmp_path_factory.mktemp("groups")
    polls = generate.write_streamed(folder, STORES, DAYS, seed=5, group_stores=GROUP)
    return folder, polls


def test_a_set_of_many_groups_has_every_store_once(many_groups):
    folder, polls = many_groups
    status, hours, zones = read_folder(folder)
    assert len(status) == polls
    ids = generate.store_ids(STORES, seed=5).astype(str)
    assert len(set(ids)) == STORES
    # Every file names only the set's stores, and each store has at most one zone row.
    for frame in (status, hours, zones):
        assert set(frame["store_id"]) <= set(ids)
    assert zones["store_id"].is_unique
    # 19-digit decimals, and about 3% version-4 UUIDs: 30 expected, sd 5.4.
    uuids = [one for one in ids if "-" in one]
    assert all(str(uuid.UUID(one)) == one and uuid.UUID(one).version == 4 for one in uuids)
    assert 10 <= len(uuids) <= 55
    decimals = [one for one in ids if "-" not in one]
    assert all(len(one) == 19 and one.isdigit() for one in decimals)
    # 1% of the stores are never polled: 10 expected (none at all has a chance of 4e-5).
    never = STORES - status["store_id"].nunique()
    assert 1 <= never <= 25
    # Some stores have no hours (10%: 100 expected, sd 9.5), some no zone row (1.5%) and
    # some a name that is no zone (0.5%).
    assert 60 <= STORES - hours["store_id"].nunique() <= 140
    assert 3 <= STORES - len(zones) <= 35
    assert (zones["timezone_str"] == "Mars/Olympus_Mons").sum() >= 1


def test_a_set_of_many_groups_polls_hourly_with_jitter_misses_and_outages(many_groups):
    folder, _ = many_groups
    status, _, _ = read_folder(folder)
    utc = status["timestamp_utc"].str.endswith(" UTC")
    iso = status["timestamp_utc"].str.endswith("Z")
    assert (utc | iso).all()
    # About one timestamp in a hundred is ISO 8601 with Z: 720 expected of 72,000, sd 27.
    assert 500 <= iso.sum() <= 950
    instant = pd.to_datetime(status["timestamp_utc"].str.removesuffix(" UTC"), utc=True,
                             format="ISO8601").dt.as_unit("us").astype("int64")
    assert instant.max() <= END_US
    assert instant.min() >= END_US - DAYS * 24 * HOUR_US - 600 * 10**6

    # Each polled store: one poll in each of its 72 hourly slots but the last, kept with
    # probability 0.96, and the last always: 71 * 0.96 + 1 = 69.16 on average (the mean of
    # 990 stores has an sd of 0.05).
    per_store = status.groupby("store_id").size()
    assert per_store.max() <= DAYS * 24
    assert abs(per_store.mean() - (DAYS * 24 - 1) * 0.96 - 1) < 0.3
    # Polls of a store are whole hours apart, give or take the jitter (within 10 min each),
    # and the jitter's sd is 90 s: the difference of two has an sd of 127 s.
    polls = pd.DataFrame({"store": status["store_id"], "t": instant}).sort_values(["store", "t"])
    gap_s = polls.groupby("store")["t"].diff().dropna().to_numpy() / 1e6
    hours_apart = np.round(gap_s / 3600)
    assert (hours_apart >= 1).all()
    off_s = gap_s - hours_apart * 3600
    assert np.abs(off_s).max() <= 1200
    assert 110 <= off_s.std() <= 145
    # Some hours are missed: 4% of the gaps are two hours or more.
    assert 0.025 <= (hours_apart >= 2).mean() <= 0.06

    # Inactive: outages (Poisson(6/7) a store, 2.77 polls on average, of 72 slots: 3.3%)
    # and the odd flaky poll (1%): about 4.2%, a little less for overlaps and cut runs.
    inactive = status["status"] == "inactive"
    assert 0.03 <= inactive.mean() <= 0.055
    # Outages are runs: about 40% of the stores have two inactive polls in a row.
    state = (status.assign(t=instant).sort_values(["store_id", "t"])
             .assign(off=lambda f: f["status"] == "inactive"))
    run = state["off"] & state.groupby("store_id")["off"].shift(fill_value=False)
    assert state.loc[run, "store_id"].nunique() >= 250


def test_a_set_of_many_groups_has_every_shape_of_hours(many_groups):
    folder, _ = many_groups
    _, hours, _ = read_folder(folder)
    rows = hours.groupby("store_id").size()
    # Shapes of 5, 6, 7 and 14 rows a week (closed on weekends, on Mondays, open each day,
    # split shifts).
    assert set(rows) == {5, 6, 7, 14}
    assert (hours["end_time_local"] < hours["start_time_local"]).any(), "overnight hours"
    assert (hours["end_time_local"] == "23:59:59").any()
    assert ((hours["start_time_local"] == "00:00:00")
            & (hours["end_time_local"] == "00:00:00")).any(), "start == end: 24 hours"
    mondays = hours.groupby("store_id")["dayOfWeek"].apply(lambda days: "0" in set(days))
    assert not mondays.all(), "closed on Mondays"


def test_the_same_arguments_give_the_same_bytes_whole_or_streamed(tmp_path, many_groups):
    folder, _ = many_groups
    generate.write_streamed(tmp_path / "again", STORES, DAYS, seed=5, group_stores=GROUP)
    assert file_bytes(tmp_path / "again") == file_bytes(folder)
    # The frames of `generate_dataset` are the same data: written, the same bytes.
    dataset = generate.generate_dataset(STORES, DAYS, seed=5, group_stores=GROUP)
    generate.write_dataset(dataset, tmp_path / "whole")
    assert file_bytes(tmp_path / "whole") == file_bytes(folder)
    generate.write_streamed(tmp_path / "other", STORES, DAYS, seed=6, group_stores=GROUP)
    assert file_bytes(tmp_path / "other")["store_status.csv"] != \
        file_bytes(folder)["store_status.csv"]


def test_the_next_hours_are_of_the_same_stores_right_after_the_set():
    dataset = generate.generate_dataset(300, 2, seed=9, group_stores=40)
    status = generate.next_hours(300, seed=9, hours=3).status
    assert len(status) == 3 * 300
    for hour in range(3):
        part = status.iloc[hour * 300:(hour + 1) * 300]
        assert list(part["store_id"]) == list(generate.store_ids(300, 9).astype(str))
        assert part["timestamp_us"].between(END_US + hour * HOUR_US + 1,
                                            END_US + (hour + 1) * HOUR_US).all()
    assert set(dataset.status["store_id"]) <= set(status["store_id"])
    assert dataset.status["timestamp_us"].max() <= END_US
    # An hour is the same however many are asked for.
    first = generate.next_hours(300, seed=9, hours=1).status
    pd.testing.assert_frame_equal(first, status.iloc[:300])


def test_store_ids_drawn_twice_are_drawn_again(monkeypatch):
    draw = generate._draw_ids
    calls = []

    def repeating(rng, count):
        ids = draw(rng, count)
        if not calls:  # the first draw: every other id repeats the one before it
            ids[1::2] = ids[:count - count % 2:2]
        calls.append(count)
        return ids

    monkeypatch.setattr(generate, "_draw_ids", repeating)
    ids = generate.store_ids(400, seed=1)
    assert calls[0] == 400 and len(calls) >= 2
    assert len(set(ids)) == 400


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    polls = generate._group_polls

    def failing(seed, group, *args):
        if group == 3:
            raise OSError("disk full")
        return polls(seed, group, *args)

    monkeypatch.setattr(generate, "_group_polls", failing)
    with pytest.raises(OSError, match="disk full"):
        generate.write_streamed(tmp_path / "out", 400, 2, group_stores=50)
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(OSError, match="disk full"):
        generate.write_streamed(tmp_path / "out.zip", 400, 2, group_stores=50)
    assert list(tmp_path.glob("out.zip*")) == []
