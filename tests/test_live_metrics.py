"""/metrics: stores per state now and open incidents (app.live), on the hand-worked data of
tests/test_live_api.py: a down, b up, c closed, d silent; a's and d's incidents open."""

from test_live_api import fed  # noqa: F401 (a fixture)
from test_metrics import scrape, value


def test_every_state_is_reported_before_any_data(client):
    empty = scrape(client.get)
    assert {key: v for key, v in empty.items() if key[0] in (
        "store_monitor_stores", "store_monitor_open_incidents")} == {
        ("store_monitor_stores", (("state", s),)): 0.0
        for s in ("up", "down", "closed", "silent")} | {
        ("store_monitor_open_incidents", ()): 0.0}


def test_after_an_ingest(fed, client):  # noqa: F811
    samples = scrape(client.get)
    assert {s: value(samples, "store_monitor_stores", state=s)
            for s in ("up", "down", "closed", "silent")} == {
        "up": 1, "down": 1, "closed": 1, "silent": 1}
    assert value(samples, "store_monitor_open_incidents") == 2
