"""What an operations manager sees first (issue 18), in a real headless Chromium at a
laptop's width (1280 px) and a phone's (390 px), with and without JavaScript, against a real
`run.py` on the bundled data (and one on an empty database). Expected values come from the
JSON API, which tests/test_pages_states.py checks against hand-worked figures.
Screenshots land in test-artifacts/screenshots/pages-*.png."""

import re

import pytest
import requests
from browsers import screenshot
from conftest import PROJECT_DIR
from servers import Server

pytestmark = pytest.mark.e2e

LAPTOP, PHONE = 1280, 390
AS_OF = "2023-01-24T12:00:00Z"
WORST = "7217134842459067277"  # the bundled data's store with most downtime last week
LOCAL_AND_UTC = re.compile(r"^\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d America/New_York "
                           r"\(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\): poll (active|inactive)$")


def start(folder, data):
    server = Server(folder, DATABASE_URL=f"sqlite:///{folder / 'pages.sqlite3'}",
                    STORE_DATA=data, SERVER_PROCESSES="1")
    return server.start(timeout=120)


def report(server, **body):
    answer = requests.post(f"{server.url}/trigger_report", json=body or None, timeout=10)
    report_id = answer.json()["report_id"]
    server.wait_for_report(report_id)
    return requests.get(f"{server.url}/api/v1/reports/{report_id}", timeout=10).json()


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    server = start(folder, str(PROJECT_DIR / "data" / "store-monitoring-data.zip"))
    try:
        latest, as_of = report(server), report(server, as_of=AS_OF)
        yield server, latest, as_of
    finally:
        server.stop()


def open_page(browser, width, javascript=True):
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  java_script_enabled=javascript)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return context, page


def right_edges(page, selector):
    """The right edge of every visible cell of `selector`'s rows, in CSS pixels."""
    return page.evaluate("""(selector) => [...document.querySelectorAll(selector + ' tr > *')]
        .filter(cell => getComputedStyle(cell).display !== 'none')
        .map(cell => cell.getBoundingClientRect().right)""", selector)


def test_laptop_with_javascript(browser, bundled):
    server, latest, as_of = bundled
    context, page = open_page(browser, LAPTOP)
    try:
        # 1. The home page answers first: how fresh the data is, how much, the last report.
        page.goto(server.url + "/")
        assert page.locator("#data-latest").inner_text() == "2023-01-25 18:00:00 UTC"
        assert re.fullmatch(r"[0-9,]+ d \d+ h ago", page.locator("#data-ago").inner_text())
        assert page.locator("#data-stores").inner_text() == "296"
        assert page.locator("#data-rejected").inner_text() == "0"
        assert "56,949 rows loaded" in page.locator("#data").inner_text()
        down_day = latest["figures"]["stores_down_last_day"]
        assert page.locator("#latest-down-day").inner_text() == str(down_day) == "82"
        # Each report in the list says the instant it describes; the as_of one, badged.
        cells = page.locator("#reports-table td.report-now").all_inner_texts()
        assert sorted(cells) == ["2023-01-25 18:00:00 UTC", "as of 2023-01-24 12:00:00 UTC"]
        page.get_by_role("link", name="/docs").click()
        page.wait_for_url("**/docs")
        page.go_back()
        screenshot(page, "pages-home-1280")

        # 3. "Down in the last day" lists those stores, most downtime first.
        page.locator("#latest-down-day").click()
        page.wait_for_url("**down=day**")
        assert page.locator("#rows-count").inner_text().startswith(
            f"{down_day} stores down at some point in the last day")
        assert "2023-01-25 18:00:00 UTC" in page.locator("#report-now").inner_text()
        downs = [float(x) for x in page.locator(
            "#rows-table tbody td:nth-child(2)").all_inner_texts()]
        assert downs == sorted(downs, reverse=True) and len(downs) == 50
        page.goto(f"{server.url}/reports/{latest['report_id']}")
        ids = page.locator("#rows-table tbody td.store").all_inner_texts()
        assert ids[0] == WORST == latest["top_downtime"][0]["store_id"]
        # The figures that answer "who was down" fit: no sideways scroll at 1280 px.
        box = page.evaluate("""() => { const s = document.querySelector('#rows .scroll');
            return [s.scrollWidth, s.clientWidth]; }""")
        assert box[0] <= box[1], box
        assert max(right_edges(page, "#rows-table")) <= LAPTOP
        # A downtime column's first click sorts descending.
        page.locator("#rows-table th a[data-sort='downtime_last_day']").click()
        page.wait_for_url("**sort=downtime_last_day&order=desc**")
        assert page.locator("#rows-table th[aria-sort='descending']").inner_text().startswith(
            "Down, last day")
        # 5. One legend, one hover line; histogram bins where the stores are.
        assert page.locator(".u-legend").count() == 0
        edges = latest["histogram"]["edges"]
        assert edges[-1] == 100 and edges[-11] >= 50 and sum(latest["histogram"]["counts"]) == 296
        screenshot(page, "pages-report-1280")

        # 2. A report as of an instant says so, and its store links open that week.
        page.goto(f"{server.url}/reports/{as_of['report_id']}")
        assert "as of 2023-01-24 12:00:00 UTC" in page.locator("#report-now").inner_text()
        worst = as_of["top_downtime"][0]["store_id"]
        page.locator("#top-table").get_by_role("link", name=worst).click()
        page.wait_for_url(f"**/stores/{worst}?report=*as_of=*")
        assert "as of 2023-01-24 12:00:00 UTC" in page.locator("#store-now").inner_text()
        timeline = requests.get(f"{server.url}/api/v1/stores/{worst}/timeline",
                                params={"as_of": AS_OF}, timeout=10).json()
        assert page.locator("#fig-downtime").inner_text() == \
            f"{timeline['downtime_last_week_hours']:.2f} h"
        assert page.locator("#incidents-table tbody tr").count() == len(timeline["incidents"])

        # 4 and 5: the store page's figures are the CSV's; 24-hour times on axes and hovers.
        page.goto(f"{server.url}/stores/{WORST}")
        assert page.locator("#fig-downtime").inner_text() == "22.03 h"
        labels = page.evaluate("""() => { const u = window.storeMonitorCharts.week;
            return u.axes[0].values(u, u.axes[0]._splits || []); }""")
        assert labels and all(re.fullmatch(r"\d\d-\d\d|\d\d:\d\d", x) for x in labels), labels
        poll = page.evaluate("""() => { const u = window.storeMonitorCharts.week;
            return [u.valToPos(u.data[0][3], 'x'), u.valToPos(u.data[1][3] ?? u.data[2][3], 'y')]
            }""")
        over = page.locator("#week-chart .u-over").bounding_box()
        page.mouse.move(over["x"] + poll[0], over["y"] + poll[1])
        hover = page.locator("#week-chart + .readout").inner_text()
        assert LOCAL_AND_UTC.match(hover), hover
        screenshot(page, "pages-store-1280")
        assert page.errors == []
    finally:
        context.close()


def test_phone_with_javascript(browser, bundled):
    server, latest, _as_of = bundled
    context, page = open_page(browser, PHONE)
    try:
        for path in ("/", f"/reports/{latest['report_id']}", f"/stores/{WORST}", "/docs"):
            page.goto(server.url + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, path
        page.goto(f"{server.url}/reports/{latest['report_id']}")
        # Store, down last week, down last day and weekly uptime stay on screen.
        assert max(right_edges(page, "#rows-table")) <= PHONE
        headers = page.locator("#rows-table thead th").all_inner_texts()
        assert [h for h in headers if h.strip()][:4] == [
            "Store", "Down, last week (h) ▼", "Down, last day (h)", "Weekly uptime"]
        screenshot(page, "pages-report-390")
        page.goto(f"{server.url}/stores/{WORST}")
        lengths = page.locator("#incidents-table td.length")
        assert lengths.count() > 0
        for i in range(lengths.count()):
            box = lengths.nth(i).bounding_box()
            assert box["x"] + box["width"] <= PHONE and lengths.nth(i).is_visible()
        assert re.fullmatch(r"(\d+ h )?\d+ min( \d+ s)?|\d+ s", lengths.nth(0).inner_text())
        screenshot(page, "pages-store-390")
        assert page.errors == []
    finally:
        context.close()


@pytest.mark.parametrize("width", [LAPTOP, PHONE])
def test_without_javascript_charts_say_they_need_it(browser, bundled, width):
    server, latest, _as_of = bundled
    context, page = open_page(browser, width, javascript=False)
    try:
        page.goto(server.url + "/")
        assert page.locator("#data-stores").inner_text() == "296"
        page.goto(f"{server.url}/reports/{latest['report_id']}")
        assert "needs JavaScript" in page.locator("#histogram").inner_text()
        assert page.locator("#rows-table tbody tr").count() == 50
        page.goto(f"{server.url}/stores/{WORST}")
        assert "needs JavaScript" in page.locator("#week-chart").inner_text()
        assert "needs JavaScript" in page.locator("#days-chart").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"pages-store-nojs-{width}")
    finally:
        context.close()


def test_an_empty_database_at_both_widths(browser, tmp_path):
    server = start(tmp_path, "")
    try:
        empty = report(server)
        assert empty["rows"] == 0
        for width in (LAPTOP, PHONE):
            context, page = open_page(browser, width)
            try:
                page.goto(server.url + "/")
                assert "flask ingest PATH" in page.locator("#no-data").inner_text()
                page.goto(f"{server.url}/reports/{empty['report_id']}")
                assert "Complete" in page.locator("h1").inner_text()
                assert page.locator("#fig-stores").inner_text() == "0"
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                screenshot(page, f"pages-empty-{width}")
                assert page.errors == []
            finally:
                context.close()
    finally:
        server.stop()
