"""Live-state pages in headless Chromium against a real `run.py`, at 1280 and 390 px: the
home page's "Now" section, /incidents and its filters, and a store page's incident links
that zoom the week's chart. Data: the hand-worked set of tests/test_live_api.py, loaded
over HTTP (now 10:00 UTC Monday 1 January 2024; a down since 09:00, d silent; a's
incidents 01:00-03:00, 05:00-07:00, 09:00-now). Screenshots in test-artifacts/screenshots/.
"""

import pytest
import requests
from browsers import assert_accessible, screenshot
from servers import Server
from test_live_api import HOURS, POLLS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("live-browser")
    running = Server(folder, DATABASE_URL=f"sqlite:///{folder / 'live.sqlite3'}", STORE_DATA="",
                     SERVER_PROCESSES="1").start()
    bodies = {
        "hours": "store_id,dayOfWeek,start_time_local,end_time_local\n" + "".join(
            f"{s},{d},{a},{b}\n" for s, d, a, b in HOURS),
        "timezone": "store_id,timezone_str\nc,UTC\n",
        "status": "store_id,timestamp_utc,status\n" + "".join(
            f"{s},{t}:00 UTC,{'active' if a else 'inactive'}\n" for s, t, a in POLLS)}
    for kind, body in bodies.items():
        answer = requests.post(f"{running.url}/api/v1/ingest?kind={kind}", data=body.encode(),
                               headers={"Content-Type": "text/csv"}, timeout=30)
        assert answer.status_code == 201, answer.text
    yield running
    running.stop()


@pytest.fixture(params=[1280, 390], ids=["1280px", "390px"])
def page(browser, request):
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    page = context.new_page()
    page.width = request.param
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


def test_home_now_section(page, live_server):
    page.goto(live_server.url + "/")
    live = page.locator("#live")
    assert live.locator("#live-down").inner_text() == "1"
    assert live.locator("#live-silent").inner_text() == "1"
    down = live.locator("#live-down-table tbody tr")
    assert down.count() == 1
    assert down.first.locator("td").first.inner_text() == "a"
    assert "2024-01-01 03:00:00 America/Chicago" in down.first.inner_text()
    assert live.locator("#live-open li").count() == 2
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= page.width
    screenshot(page, f"live-home-{page.width}")
    assert_accessible(page)


def test_incidents_filters_and_a_link_to_the_chart(page, live_server):
    page.goto(live_server.url + "/incidents")
    assert page.locator("#incidents-list tbody tr").count() == 5
    page.select_option("#filter-state", "closed")
    page.fill("#filter-store", "a")
    page.click("#incident-filters button[type=submit]")
    page.wait_for_load_state("load")
    rows = page.locator("#incidents-list tbody tr")
    assert rows.count() == 2
    assert page.url.endswith("/incidents?state=closed&store=a&since=&until=")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.width
    screenshot(page, f"live-incidents-{page.width}")
    assert_accessible(page)
    # The 05:00-07:00 incident's place on the store's week: the chart zooms to it, with an
    # hour either side (its length is 2 h: a pad of max(1 h, half of it) = 1 h).
    page.goto(live_server.url + "/stores/a#incident-2024-01-01T05:00:00Z")
    scale = page.evaluate("[storeMonitorCharts.week.scales.x.min,"
                          " storeMonitorCharts.week.scales.x.max]")
    assert scale == [1704085200 - 3600, 1704092400 + 3600]
    assert page.locator("tr.shown").get_attribute("id") == "incident-2024-01-01T05:00:00Z"


def test_store_page_state_and_on_the_chart(page, live_server):
    page.goto(live_server.url + "/stores/a")
    assert page.locator("#store-state").inner_text().startswith(
        "Now: down since 2024-01-01 09:00:00 UTC")
    page.locator("#incidents-table a.chart-link").nth(2).click()  # 01:00-03:00, the oldest
    scale = page.evaluate("[storeMonitorCharts.week.scales.x.min,"
                          " storeMonitorCharts.week.scales.x.max]")
    assert scale == [1704070800 - 3600, 1704078000 + 3600]
    assert page.evaluate("document.documentElement.scrollWidth") <= page.width
    screenshot(page, f"live-store-{page.width}")
    # A double click shows the whole week again: 10:00 on 25 December to 10:00 now.
    page.locator("#week-chart .u-over").dblclick()
    assert page.evaluate("[storeMonitorCharts.week.scales.x.min,"
                         " storeMonitorCharts.week.scales.x.max]") == [1703498400, 1704103200]
    assert page.locator("tr.shown").count() == 0
