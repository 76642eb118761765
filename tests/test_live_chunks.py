"""The live state of many stores is computed a chunk of stores at a time (the first ingest
of a million stores holds 182 M polls): any chunking gives what one pass over all stores
gives."""

import numpy as np
import pandas as pd

from app.live import state
from bench.generate import generate_dataset


def test_chunks_of_stores_give_the_state_and_incidents_of_one_pass(monkeypatch):
    data = generate_dataset(60, 3, seed=11)
    polls = data.status.assign(store_id=data.status["store_id"].astype("category"))
    hours = data.hours.rename(columns={"start_s": "start_local_s", "end_s": "end_local_s"})
    now = int(polls["timestamp_us"].max())
    stores = polls["store_id"].cat.categories
    # Incidents wanted from a day before `now` for half the stores, from the start for the
    # others.
    since = pd.DataFrame({"store_id": stores, "since_us": np.where(
        np.arange(len(stores)) % 2 == 0, now - 86_400_000_000, int(polls["timestamp_us"].min()))})
    whole = state.compute(polls, hours, data.timezones, now, since)
    monkeypatch.setattr(state, "CHUNK_POLLS", 37)  # about one store a chunk, and splits
    chunked = state.compute(polls, hours, data.timezones, now, since)
    assert whole.incident_store.size > 10, "the data should hold incidents"
    for name in ("store_ids", "open_now", "counted_us", "counted_active", "incident_store",
                 "incident_start", "incident_end", "incident_open", "next_change_us"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name


def test_parts_of_stores_give_the_state_and_incidents_of_one_pass(monkeypatch):
    # Above SPLIT_POLLS polls, each range of stores gets engine inputs of its own.
    data = generate_dataset(60, 3, seed=12)
    ids = {store: pk for pk, store in enumerate(sorted(set(data.status["store_id"])
                                                       | set(data.hours["store_id"])
                                                       | set(data.timezones["store_id"])))}
    polls = (data.status.assign(store_id=data.status["store_id"].map(ids))
             .sort_values(["store_id", "timestamp_us"], ignore_index=True))
    hours = data.hours.rename(columns={"start_s": "start_local_s", "end_s": "end_local_s"})
    hours = hours.assign(store_id=hours["store_id"].map(ids))
    zones = data.timezones.assign(store_id=data.timezones["store_id"].map(ids))
    now = int(polls["timestamp_us"].max())
    stores = np.unique(polls["store_id"])
    since = pd.DataFrame({"store_id": stores, "since_us": now - 86_400_000_000})
    whole = state.compute(polls, hours, zones, now, since)
    monkeypatch.setattr(state, "SPLIT_POLLS", 100)  # a part of one or two stores
    parts = state.compute(polls, hours, zones, now, since)
    assert whole.incident_store.size > 10, "the data should hold incidents"
    by_id = np.argsort(whole.store_ids.astype(np.int64))
    assert np.array_equal(whole.store_ids[by_id].astype(np.int64),
                          parts.store_ids.astype(np.int64))
    for name in ("open_now", "counted_us", "counted_active", "next_change_us"):
        assert np.array_equal(getattr(whole, name)[by_id], getattr(parts, name)), name
    incidents = {(int(whole.store_ids[s]), b, e, o) for s, b, e, o in zip(
        whole.incident_store, whole.incident_start, whole.incident_end, whole.incident_open)}
    assert incidents == {(int(parts.store_ids[s]), b, e, o) for s, b, e, o in zip(
        parts.incident_store, parts.incident_start, parts.incident_end, parts.incident_open)}
