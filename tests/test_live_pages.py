"""Live-state pages through the test client, on the hand-worked data of
tests/test_live_api.py (now 10:00 UTC Monday 1 January 2024: a down since 09:00, b up,
c closed, d silent since its 07:00 poll; open incidents a 09:00- and d 00:00-)."""

import re

from test_live_api import fed  # noqa: F401 (a fixture)


def text(response):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_home_shows_down_silent_and_open(fed, client):  # noqa: F811
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    words = text(page)
    assert "Down 1 Up 1 Closed (outside business hours) 1 Silent (no recent poll) 1" in words
    down = html[html.index("<table class=\"data\" id=\"live-down-table\""):]
    down = down[:down.index("</table>")]
    # a: down since 09:00 UTC, which is 03:00 in Chicago (its zone: none given), an hour.
    assert re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", down)).split() == [
        "Store", "Down", "since", "(local)", "Since", "(UTC)", "For",
        "a", "2024-01-01", "03:00:00", "America/Chicago", "2024-01-01", "09:00:00", "UTC",
        "1", "h", "0", "min"]
    silent = html[html.index("<table class=\"data\" id=\"live-silent-table\""):]
    silent = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", silent[:silent.index("</table>")]))
    assert "d 2024-01-01 01:00:00 America/Chicago 2024-01-01 07:00:00 UTC 3 h 0 min" in silent
    assert "Open incidents (2)" in words
    assert "d since 2024-01-01 00:00:00 UTC , 10 h 0 min" in words
    assert "a since 2024-01-01 09:00:00 UTC , 1 h 0 min" in words
    assert 'href="/stores/a#incident-2024-01-01T09:00:00Z"' in html


def test_home_without_data(client):
    assert "The state of the stores shows here once data is loaded." in text(client.get("/"))


def test_incidents_page_filters(fed, client):  # noqa: F811
    def rows(query=""):
        page = client.get("/incidents" + query)
        html = page.get_data(as_text=True)
        if 'id="incidents-list"' not in html:
            return page.status_code, []
        table = html[html.index('id="incidents-list"'):html.index("</table>")]
        return page.status_code, [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", "<" + row)).strip()
                                  for row in table.split("<tr data-id")[1:]]

    status, everything = rows()
    assert status == 200 and len(everything) == 5
    assert everything[0] == "a open 2024-01-01 09:00:00 going on 1 h 0 min the store's week"
    assert rows("?state=closed")[1] == [
        "a closed 2024-01-01 05:00:00 2024-01-01 07:00:00 2 h 0 min the store's week",
        "a closed 2024-01-01 01:00:00 2024-01-01 03:00:00 2 h 0 min the store's week",
        "b closed 2024-01-01 00:00:00 2024-01-01 04:00:00 4 h 0 min the store's week"]
    assert [r.split()[0] for r in rows("?store=a")[1]] == ["a", "a", "a"]
    assert [r.split()[:3] for r in rows(
        "?since=2024-01-01T04:30:00Z&until=2024-01-01T06:00:00Z")[1]] == [
        ["a", "closed", "2024-01-01"], ["d", "open", "2024-01-01"]]
    bad = client.get("/incidents?since=yesterday")
    assert bad.status_code == 400 and "since:" in text(bad)
    assert rows("?store=nobody")[1] == []
    assert "No incidents match these filters." in text(client.get("/incidents?store=nobody"))


def test_store_page_state_and_chart_links(fed, client):  # noqa: F811
    page = client.get("/stores/a")
    words = text(page)
    assert "Now: down since 2024-01-01 09:00:00 UTC · latest poll 2024-01-01 10:00:00 UTC" in words
    html = page.get_data(as_text=True)
    assert html.count('class="chart-link"') == 3
    assert ('<tr data-start="2024-01-01T09:00:00Z" data-end="2024-01-01T10:00:00Z" '
            'data-minutes="60.0" id="incident-2024-01-01T09:00:00Z">') in html
    assert "Now: closed" in text(client.get("/stores/c"))


def test_longest_down_first_with_and_without_a_kept_open_incident(fed):  # noqa: F811
    # "e" is down since 08:00 without a kept open incident (as a store can be): it comes
    # before "a" (its open incident from 09:00), ordered by since across the two kinds.
    # Stores per state are read as the last update kept them, or counted without them.
    import sqlalchemy as sa

    from app.extensions import db
    from app.live import read
    from app.storage.models import LiveMeta, LiveStore, Store

    eight = 1704096000000000  # 2024-01-01 08:00 UTC
    with fed.app_context():
        kept = read.overview()["stores"]
        with db.engine.begin() as conn:
            none_without = conn.execute(sa.select(LiveMeta.stores_down_without_incident)
                                        ).scalar()
            pk = conn.execute(sa.insert(Store).values(store_id="e")).inserted_primary_key[0]
            conn.execute(sa.insert(LiveStore).values(
                store_pk=pk, store_id="e", state="down", since_us=eight,
                latest_us=eight + 3_600_000_000, counted_us=eight + 3_600_000_000,
                counted_active=False, next_us=0))
            # As the live state's update would count it.
            conn.execute(sa.update(LiveMeta).values(stores_down_without_incident=1))
        down = read.overview()["down"]
        with db.engine.begin() as conn:
            conn.execute(sa.update(LiveMeta).values(stores_down=None))
        counted = read.overview()["stores"]
    assert kept == {"up": 1, "down": 1, "closed": 1, "silent": 1}
    assert none_without == 0  # a and d: each open incident's store is down or silent
    assert [(row["store_id"], row["since"]) for row in down] == [
        ("e", "2024-01-01T08:00:00Z"), ("a", "2024-01-01T09:00:00Z")]
    assert counted == {"up": 1, "down": 2, "closed": 1, "silent": 1}


def test_a_store_down_where_business_time_begins_has_no_incident_and_is_listed(app, tmp_path):
    # "e" opens at 10:00 (UTC) on Mondays and its one poll, at 10:00 (now), is inactive: it
    # is down, but its downtime has no length yet, so it has no incident. The live update
    # counts it, and the home page lists it after "a" (down since 09:00), since now.
    import sqlalchemy as sa
    from test_live_api import HOURS, POLLS
    from test_live_state import feed

    from app.extensions import db
    from app.live import read
    from app.storage.models import LiveMeta

    feed(app, tmp_path, POLLS + [("e", "2024-01-01 10:00", False)],
         hours=HOURS + [("e", 0, "10:00", "11:00")], zones=[("c", "UTC"), ("e", "UTC")])
    with app.app_context():
        with db.engine.connect() as conn:
            counted = conn.execute(sa.select(LiveMeta.stores_down_without_incident)).scalar()
        overview = read.overview()
    assert counted == 1
    assert overview["stores"]["down"] == 2
    assert [(row["store_id"], row["since"]) for row in overview["down"]] == [
        ("a", "2024-01-01T09:00:00Z"), ("e", "2024-01-01T10:00:00Z")]
    assert [i["store_id"] for i in overview["open_incidents"]] == ["d", "a"]
