"""The live-state API: /api/v1/status, /stores, /incidents (filters and paging) and
/webhooks (registration, deliveries, and --min-minutes), through the test client.

Hand-worked data (UTC, Monday 1 January 2024; the status switches half-way between two
observations in business time; `now` is the latest poll, 10:00):

- "a", open 24x7: active 00:00, inactive 02:00, active 04:00, inactive 06:00, active
  08:00, inactive 10:00 -> incidents 01:00-03:00, 05:00-07:00, and 09:00-now (open); down.
- "b", open 24x7: inactive 00:00, active 08:00 -> incident 00:00-04:00; up (its latest
  poll is 120 minutes old, not more than SILENT_AFTER_MINUTES).
- "c", open 01:00-05:00 daily: active 03:00 -> no incident; closed at 10:00.
- "d", open 24x7: inactive 07:00 -> its first observation governs back to where the data
  begins (00:00): incident 00:00-now (open); silent (latest poll 180 minutes old).
"""

import json

import pytest
from test_live_state import feed
from test_live_webhooks import Receiver

from app.live import webhooks

POLLS = [("a", "2024-01-01 00:00", True), ("a", "2024-01-01 02:00", False),
         ("a", "2024-01-01 04:00", True), ("a", "2024-01-01 06:00", False),
         ("a", "2024-01-01 08:00", True), ("a", "2024-01-01 10:00", False),
         ("b", "2024-01-01 00:00", False), ("b", "2024-01-01 08:00", True),
         ("c", "2024-01-01 03:00", True), ("d", "2024-01-01 07:00", False)]
HOURS = [("c", day, "01:00", "05:00") for day in range(7)]


def t(hhmm):
    return f"2024-01-01T{hhmm}:00Z"


@pytest.fixture
def fed(app, tmp_path):
    feed(app, tmp_path, POLLS, hours=HOURS, zones=[("c", "UTC")])
    return app


def spans(incidents):
    return [(i["store_id"], i["start"], i["end"], i["state"]) for i in incidents]


def test_status_counts_and_open_incidents(fed, client):
    status = client.get("/api/v1/status").get_json()
    assert status["now"] == t("10:00")
    assert status["stores"] == {"up": 1, "down": 1, "closed": 1, "silent": 1}
    assert [(i["store_id"], i["start"], i["end"], i["minutes"], i["state"])
            for i in status["open_incidents"]] == [
        ("d", t("00:00"), None, 600.0, "open"), ("a", t("09:00"), None, 60.0, "open")]
    assert status["open_total"] == 2
    oldest = client.get("/api/v1/status?limit=1").get_json()
    assert ([i["store_id"] for i in oldest["open_incidents"]], oldest["open_total"]) == (
        ["d"], 2)
    assert client.get("/api/v1/status?limit=0").status_code in (400, 422)


def test_status_reads_one_state_while_another_transaction_commits(fed, client, monkeypatch):
    # Between the status's first statements and its count of open incidents, another
    # transaction commits a third open incident (b's, from 05:00): the answer is still
    # all of the state before it, and the next one sees it. (It guards PostgreSQL's
    # reads, each statement of which would see the commit by default; SQLite's reads
    # are one transaction in any case.)
    import sqlalchemy as sa

    from app.extensions import db
    from app.live import read
    from app.storage.models import OPEN_END_US, Incident, Store

    original = read._state_counts

    def counts_then_a_commit_elsewhere(conn):
        found = original(conn)
        with fed.app_context(), db.engine.begin() as other:
            b = other.execute(sa.select(Store.id).where(Store.store_id == "b")).scalar()
            other.execute(sa.insert(Incident).values(
                store_pk=b, start_us=1704085200000000, end_us=OPEN_END_US))  # 05:00
        return found

    monkeypatch.setattr(read, "_state_counts", counts_then_a_commit_elsewhere)
    during = client.get("/api/v1/status").get_json()
    monkeypatch.undo()
    after = client.get("/api/v1/status").get_json()
    assert (during["open_total"], [i["store_id"] for i in during["open_incidents"]]) == (
        2, ["d", "a"])
    assert (after["open_total"], [i["store_id"] for i in after["open_incidents"]]) == (
        3, ["d", "b", "a"])


@pytest.mark.parametrize("many_rows", [None, 0], ids=["as-it-comes", "all-staged"])
def test_stores_of_one_state_page_in_order_of_store_id(app, client, tmp_path, monkeypatch,
                                                         many_rows):
    # Stores registered in another order than their ids: s9, s7, s4 and s2 by the first
    # ingest, s1, s3 and s5 by the second. Open 24x7; at now (10:00) every store's latest
    # observation is inactive except s2's, so six are down. s4 was up after the first
    # ingest: its row is updated, not inserted. With many_rows=0 every live row goes
    # through the staged upsert (PostgreSQL's way, and SQLite's for many rows).
    from app.live import incidents
    if many_rows is not None:
        monkeypatch.setattr(incidents, "MANY_ROWS", many_rows)
    feed(app, tmp_path, [("s9", "2024-01-01 09:00", False), ("s7", "2024-01-01 09:00", False),
                         ("s4", "2024-01-01 09:00", True), ("s2", "2024-01-01 09:00", True)])
    assert [s["store_id"] for s in client.get("/api/v1/stores?state=up").get_json()[
        "stores"]] == ["s2", "s4"]
    feed(app, tmp_path, [("s1", "2024-01-01 10:00", False), ("s3", "2024-01-01 10:00", False),
                         ("s5", "2024-01-01 10:00", False), ("s4", "2024-01-01 10:00", False),
                         ("s2", "2024-01-01 10:00", True)])
    first = client.get("/api/v1/stores?state=down&limit=4").get_json()
    assert ([s["store_id"] for s in first["stores"]], first["next_cursor"]) == (
        ["s1", "s3", "s4", "s5"], "s5")
    second = client.get("/api/v1/stores?state=down&limit=4&cursor=s5").get_json()
    assert ([(s["store_id"], s["since"]) for s in second["stores"]],
            second["next_cursor"]) == ([("s7", t("09:00")), ("s9", t("09:00"))], None)
    assert [s["store_id"] for s in client.get("/api/v1/stores?state=up").get_json()[
        "stores"]] == ["s2"]


def test_stores_by_state_and_paged(fed, client):
    down = client.get("/api/v1/stores?state=down").get_json()
    assert down["stores"] == [{"store_id": "a", "state": "down", "since": t("09:00"),
                               "latest_poll": t("10:00")}]
    assert [s["store_id"] for s in client.get("/api/v1/stores?state=silent").get_json()[
        "stores"]] == ["d"]
    assert client.get("/api/v1/stores?state=up").get_json()["stores"][0]["store_id"] == "b"
    first = client.get("/api/v1/stores?limit=3").get_json()
    assert ([s["store_id"] for s in first["stores"]], first["next_cursor"]) == (
        ["a", "b", "c"], "c")
    second = client.get(f"/api/v1/stores?limit=3&cursor={first['next_cursor']}").get_json()
    assert ([s["store_id"] for s in second["stores"]], second["next_cursor"]) == (["d"], None)
    bad = client.get("/api/v1/stores?state=sleeping")
    assert bad.status_code in (400, 422) and set(bad.get_json()) >= {"error", "message"}


def test_incidents_filters(fed, client):
    def listed(query=""):
        answer = client.get(f"/api/v1/incidents{query}")
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    everything = listed()
    assert everything["next_cursor"] is None
    # Newest first by start; the two of 00:00 by id, newest first.
    assert spans(everything["incidents"])[:3] == [
        ("a", t("09:00"), None, "open"), ("a", t("05:00"), t("07:00"), "closed"),
        ("a", t("01:00"), t("03:00"), "closed")]
    assert sorted(spans(everything["incidents"])[3:]) == [
        ("b", t("00:00"), t("04:00"), "closed"), ("d", t("00:00"), None, "open")]
    ids = [i["id"] for i in everything["incidents"][3:]]
    assert ids == sorted(ids, reverse=True)
    assert [i["minutes"] for i in everything["incidents"][:3]] == [60.0, 120.0, 120.0]
    assert sorted(spans(listed("?state=open")["incidents"])) == [
        ("a", t("09:00"), None, "open"), ("d", t("00:00"), None, "open")]
    assert sorted(spans(listed("?state=closed")["incidents"])) == [
        ("a", t("01:00"), t("03:00"), "closed"), ("a", t("05:00"), t("07:00"), "closed"),
        ("b", t("00:00"), t("04:00"), "closed")]
    assert [i["start"] for i in listed("?store_id=a")["incidents"]] == [
        t("09:00"), t("05:00"), t("01:00")]
    assert listed("?store_id=c")["incidents"] == []
    # Overlapping [04:30, 06:00): a's 05:00-07:00 and d's open one (b's ends at 04:00).
    assert sorted(spans(listed(f"?since={t('04:30')}&until={t('06:00')}")["incidents"])) == [
        ("a", t("05:00"), t("07:00"), "closed"), ("d", t("00:00"), None, "open")]
    # An incident ending at `since` does not overlap: b ends at 04:00.
    assert "b" not in {i["store_id"] for i in listed(f"?since={t('04:00')}")["incidents"]}
    assert [i["store_id"] for i in listed(f"?until={t('01:00')}&state=closed")[
        "incidents"]] == ["b"]
    assert spans(listed(f"?store_id=a&state=closed&since={t('06:59')}")["incidents"]) == [
        ("a", t("05:00"), t("07:00"), "closed")]


def test_incidents_paged(fed, client):
    everything = client.get("/api/v1/incidents").get_json()["incidents"]
    pages, cursor = [], None
    while True:
        answer = client.get("/api/v1/incidents?limit=2" + (f"&cursor={cursor}" if cursor
                                                           else "")).get_json()
        pages.append([i["id"] for i in answer["incidents"]])
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == [i["id"] for i in everything]
    for bad in ("?cursor=nonsense", "?cursor=1.x", "?limit=0", "?limit=501"):
        answer = client.get("/api/v1/incidents" + bad)
        assert answer.status_code in (400, 422), bad
        assert set(answer.get_json()) == {"error", "message"}, bad
    assert client.get("/api/v1/incidents?limit=500").status_code == 200


def test_webhooks_crud(app, client):
    refused = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x",
                                                    "secret": "s"})
    assert refused.status_code == 400
    assert "loopback, private" in refused.get_json()["message"]
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    made = client.post("/api/v1/webhooks", json={
        "url": "http://127.0.0.1:9/x", "secret": "s", "events": ["incident.opened"],
        "min_minutes": 30})
    assert made.status_code == 201
    hook = made.get_json()
    assert "secret" not in hook
    assert {k: hook[k] for k in ("url", "events", "min_minutes")} == {
        "url": "http://127.0.0.1:9/x", "events": ["incident.opened"], "min_minutes": 30.0}
    assert client.get(f"/api/v1/webhooks/{hook['id']}").get_json() == hook
    assert client.get("/api/v1/webhooks").get_json() == {"webhooks": [hook]}
    assert client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json() == {
        "webhook_id": hook["id"], "deliveries": []}
    bad = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "s",
                                                "events": ["store.down"]})
    assert bad.status_code in (400, 422)
    assert client.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    for gone in (client.get(f"/api/v1/webhooks/{hook['id']}"),
                 client.delete(f"/api/v1/webhooks/{hook['id']}"),
                 client.get(f"/api/v1/webhooks/{hook['id']}/deliveries")):
        assert gone.status_code == 404
        assert gone.get_json()["message"] == f"no webhook with id {hook['id']}"
    assert client.get("/api/v1/webhooks").get_json() == {"webhooks": []}


def test_min_minutes_hears_only_of_long_incidents(app, client, tmp_path):
    # Store "m", open 24x7: active 00:00, inactive 01:00 -> an incident from 00:30. Fed
    # hour by hour. A webhook with min_minutes 90 hears of it at 02:00 (90 minutes long),
    # nothing at 03:00, its close at 04:00 (active: it ends at 03:30). A second incident,
    # 04:30-05:30 (inactive 05:00, active 06:00), lasts 60 minutes: that webhook never
    # hears of it. A webhook without min_minutes hears of everything as it happens.
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    receiver = Receiver()
    try:
        patient = client.post("/api/v1/webhooks", json={
            "url": receiver.url, "secret": "p", "min_minutes": 90}).get_json()
        eager = client.post("/api/v1/webhooks", json={"url": receiver.url,
                                                      "secret": "e"}).get_json()
        statuses = [True, False, False, False, True, False, True]
        for hour, active in enumerate(statuses):
            feed(app, tmp_path, [("m", f"2024-01-01 0{hour}:00", active)])

        def heard(hook):
            listed = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()
            return [d["type"] for d in reversed(listed["deliveries"])]

        assert heard(patient) == ["incident.opened", "incident.closed"]
        assert heard(eager) == ["incident.opened", "incident.closed", "incident.opened",
                                "incident.closed"]
        with app.app_context():
            while webhooks.deliver_one(app.config):
                pass
        # Which webhook each body went to: the secret its signature verifies with.
        got = {"p": [], "e": []}
        for headers, body in receiver.received:
            secret = next(s for s in got if webhooks.sign(
                s, headers["Store-Monitor-Timestamp"], body) == headers[
                "Store-Monitor-Signature"])
            event = json.loads(body)
            got[secret].append((event["type"], {k: v for k, v in event["incident"].items()
                                                if k != "id"}))
        first = {"store_id": "m", "start": t("00:30"), "state": "open", "end": None}
        closed = {**first, "end": t("03:30"), "minutes": 180.0, "state": "closed"}
        second = {"store_id": "m", "start": t("04:30"), "state": "open", "end": None}
        assert got["p"] == [("incident.opened", {**first, "minutes": 90.0}),
                            ("incident.closed", closed)]
        assert got["e"] == [
            ("incident.opened", {**first, "minutes": 30.0}), ("incident.closed", closed),
            ("incident.opened", {**second, "minutes": 30.0}),
            ("incident.closed", {**second, "end": t("05:30"), "minutes": 60.0,
                                 "state": "closed"})]
        delivered = client.get(f"/api/v1/webhooks/{patient['id']}/deliveries").get_json()
        assert [d["state"] for d in delivered["deliveries"]] == ["delivered", "delivered"]
        assert all([a["status_code"] for a in d["attempts"]] == [204]
                   for d in delivered["deliveries"])
    finally:
        receiver.close()
