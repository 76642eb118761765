"""Stored polls in parts (app.storage.poll_parts) and the engine reading them as runs.

Expected values come from pandas (sorting, grouping, de-duplicating the same polls), not
from the code under test."""

import numpy as np
import pandas as pd
import pytest

from app.engine import build_report
from app.storage import poll_parts
from app.storage.poll_parts import NO_POLL, PollParts, polls_table

HOUR_US = 3_600_000_000


def _random_polls(rng, stores, hours, start_hour=0):
    """A frame of one poll per store and hour (some missing), minutes off the hour."""
    store = np.repeat(np.arange(1, stores + 1), hours)
    hour = np.tile(np.arange(start_hour, start_hour + hours), stores)
    frame = pd.DataFrame({"store_pk": store,
                          "timestamp_us": hour * HOUR_US + rng.integers(0, 3_000_000_000,
                                                                        len(store)),
                          "active": rng.random(len(store)) < 0.8})
    return frame[rng.random(len(frame)) < 0.9].reset_index(drop=True)


def _sorted(frame):
    return frame.sort_values(["store_pk", "timestamp_us"]).reset_index(drop=True)


def _part(frame):
    frame = _sorted(frame)
    return polls_table(frame["store_pk"].to_numpy(), frame["timestamp_us"].to_numpy(),
                       frame["active"].to_numpy())


def _frame(columns):
    store, instant, active = columns
    return pd.DataFrame({"store_pk": store, "timestamp_us": instant,
                         "active": np.asarray(active, bool)})


def _hourly_parts(rng, stores=30, base_hours=48, tails=4):
    """A whole set and `tails` later hours (a store may skip an hour), as parts and as one
    frame."""
    frames = [_random_polls(rng, stores, base_hours)]
    frames += [_random_polls(rng, stores, 1, start_hour=base_hours + k) for k in range(tails)]
    parts = [_part(frame) for frame in frames]
    # As the copy's files give them: every part kept from its file.
    return PollParts(parts, kept=len(parts)), pd.concat(frames, ignore_index=True)


def test_reads_of_parts_are_those_of_the_polls_together():
    parts, every = _hourly_parts(np.random.default_rng(1))
    assert len(parts.parts) == 5 and parts.num_rows == len(every)
    pd.testing.assert_frame_equal(_frame(poll_parts.columns(parts.merged())), _sorted(every))
    assert parts.bounds() == (every["timestamp_us"].min(), every["timestamp_us"].max())

    pks = np.array([0, 2, 3, 17, 30, 31])  # 0 and 31 have no polls
    latest = every.groupby("store_pk")["timestamp_us"].max()
    assert parts.latest_of(pks).tolist() == [latest.get(pk, NO_POLL) for pk in pks]

    wanted = every[every["store_pk"].isin(pks)]
    pd.testing.assert_frame_equal(_frame(parts.of_stores(pks)), _sorted(wanted))

    before = int(every["timestamp_us"].quantile(0.995))
    up_to = every[every["timestamp_us"] <= before].groupby("store_pk")["timestamp_us"].max()
    store, instant = parts.latest_up_to(before)
    assert store.tolist() == up_to.index.tolist() and instant.tolist() == up_to.tolist()
    # Before every poll: no store has one.
    store, instant = parts.latest_up_to(int(every["timestamp_us"].min()) - 1)
    assert len(store) == len(instant) == 0


def _expected_after(every, new):
    """The stored polls with `new` added, the new row winning for the same store and
    instant; and how many of `new` were new."""
    seen = set(zip(every["store_pk"], every["timestamp_us"]))
    added = sum((s, t) not in seen for s, t in zip(new["store_pk"], new["timestamp_us"]))
    together = pd.concat([every, new], ignore_index=True).drop_duplicates(
        ["store_pk", "timestamp_us"], keep="last")
    return _sorted(together), added


def _add(parts, new):
    new = _sorted(new)
    return parts.with_polls(new["store_pk"].to_numpy(), new["timestamp_us"].to_numpy(),
                            new["active"].to_numpy())


def test_a_later_hour_is_a_new_part_and_the_parts_before_are_kept():
    rng = np.random.default_rng(2)
    parts, every = _hourly_parts(rng)
    new = _random_polls(rng, 35, 1, start_hour=60)  # five new stores too
    after, added, new_stores = _add(parts, new)
    assert (len(after.parts), after.kept, added, new_stores) == (6, 5, len(new), 5)
    assert all(a is b for a, b in zip(after.parts, parts.parts))
    expected, _ = _expected_after(every, new)
    pd.testing.assert_frame_equal(_frame(poll_parts.columns(after.merged())), expected)
    # Another hour on top: the parts from files are still the five, not six.
    later = _random_polls(rng, 35, 1, start_hour=61)
    assert (len(_add(after, later).parts.parts), _add(after, later).parts.kept) == (7, 5)


@pytest.mark.parametrize("case", ["between", "again", "earlier"])
def test_polls_not_later_than_their_stores_are_merged_into_one_part(case):
    rng = np.random.default_rng(3)
    parts, every = _hourly_parts(rng)
    if case == "between":  # the hour the tails skipped for some stores, and one new store
        new = _random_polls(rng, 40, 1, start_hour=20)
    elif case == "again":  # stored polls again, half with the other status
        new = every.sample(50, random_state=4)
        new = new.assign(active=np.where(np.arange(50) % 2 == 0, ~new["active"],
                                         new["active"]))
    else:  # before every poll
        new = every.drop_duplicates("store_pk").head(3).assign(
            timestamp_us=every["timestamp_us"].min() - 1)
    expected, expected_added = _expected_after(every, new)
    after, added, new_stores = _add(parts, new)
    assert (len(after.parts), after.kept, added) == (1, 0, expected_added)
    assert new_stores == len(set(new["store_pk"]) - set(every["store_pk"]))
    pd.testing.assert_frame_equal(_frame(poll_parts.columns(after.parts[0])), expected)


@pytest.mark.parametrize("base_hours, expected_counts", [(48, [3, 2, 3, 2]),
                                                       (2, [3, 1, 2, 3])])
def test_parts_beyond_the_most_are_merged(monkeypatch, base_hours, expected_counts):
    """At MAX_PARTS the later parts are merged into one; all parts are once those would
    hold more than half as many polls as the first."""
    monkeypatch.setattr(poll_parts, "MAX_PARTS", 3)
    rng = np.random.default_rng(5)
    parts, every = _hourly_parts(rng, base_hours=base_hours, tails=1)
    first = parts.parts[0]
    new, counts = [], []
    for hour in range(60, 64):
        new.append(_random_polls(rng, 30, 1, start_hour=hour))
        parts, added, _ = _add(parts, new[-1])
        counts.append(len(parts.parts))
        assert added == len(new[-1])
        expected, _ = _expected_after(every, pd.concat(new, ignore_index=True))
        pd.testing.assert_frame_equal(_frame(poll_parts.columns(parts.merged())), expected)
    assert counts == expected_counts
    # The first part is never rewritten while the later ones stay small.
    assert (parts.parts[0] is first) == (base_hours == 48)


def _report_frame(polls):
    zones = pd.DataFrame({"store_id": ["s1", "s2"], "timezone_str": ["Asia/Tokyo", "UTC"]})
    hours = pd.DataFrame({"store_id": ["s1"] * 7, "day_of_week": range(7),
                          "start_local_s": [8 * 3600] * 7, "end_local_s": [20 * 3600] * 7})
    return build_report(polls, hours, zones).frame


@pytest.mark.parametrize("order", ["parts", "not later"])
def test_the_engine_reads_a_store_as_several_runs(order):
    """Polls in parts order (each store's polls as a run per part) give the report of the
    same polls sorted; so does an order where a later run of a store starts earlier."""
    rng = np.random.default_rng(6)
    _, every = _hourly_parts(rng, stores=3, base_hours=24 * 9, tails=3)
    every["store_id"] = "s" + every["store_pk"].astype(str)
    base, tails = every.iloc[:-9], every.iloc[-9:]
    in_parts = pd.concat([_sorted(base), _sorted(tails)], ignore_index=True)
    if order == "not later":  # swap the tails of store 1 and store 2's first polls
        in_parts = pd.concat([in_parts.iloc[len(base):], in_parts.iloc[:len(base)]],
                             ignore_index=True)
    columns = ["store_id", "timestamp_us", "active"]
    pd.testing.assert_frame_equal(_report_frame(in_parts[columns]),
                                  _report_frame(_sorted(every)[columns]))


def test_the_engine_groups_runs_without_sorting_every_poll():
    """The polls of a range of stores, from runs in part order: the positions pandas'
    stable sort by store gives, found from the runs alone (no sort of every poll)."""
    from app.engine.inputs import PollOrder, StoreCodes

    rng = np.random.default_rng(7)
    _, every = _hourly_parts(rng, stores=50, base_hours=30, tails=4)
    base, tails = every.iloc[:-4 * 50], every.iloc[-4 * 50:]
    in_parts = pd.concat([_sorted(base), _sorted(tails)], ignore_index=True)
    ids = ("s" + in_parts["store_pk"].astype(str)).astype("category")
    stores = StoreCodes(ids)
    order = PollOrder(stores, in_parts["timestamp_us"].to_numpy())
    assert order._order is None  # the runs were grouped, not every poll sorted
    codes = stores.of(ids.to_numpy())
    expected = np.argsort(codes, kind="stable")  # part order is time order within a store
    assert np.array_equal(order.rows(0, len(stores.ids)), expected)
    first, last = 10, 20
    assert np.array_equal(order.rows(first, last), expected[(codes[expected] >= first)
                                                           & (codes[expected] < last)])


def test_a_copy_missing_a_part_is_not_read(app, tmp_path):
    """A copy whose polls lack a part is unreadable (the database answers), never short."""
    from app.storage import columnar

    parts, _ = _hourly_parts(np.random.default_rng(8), tails=2)
    empty = {"hours": None, "stores": None, "zones": None}
    with app.app_context():
        from app.storage.snapshot import empty_table
        tables = {name: empty_table(name) for name in empty} | {"polls": PollParts(parts.parts)}
        copies = columnar.Copies(tmp_path)
        copies.save("v1", tables)
        assert len(copies.load("v1")["polls"].parts) == 3
        (tmp_path / "v1" / "polls.1.arrow").unlink()
        assert copies.load("v1") is None
        # A copy without its list of parts holds one part, unless it holds more.
        (tmp_path / "v1" / "parts").unlink()
        assert copies.load("v1") is None
        (tmp_path / "v1" / "polls.2.arrow").unlink()
        assert len(copies.load("v1")["polls"].parts) == 1
