"""The dashboard in a real headless Chromium (Playwright, the `browser` fixture, see
tests/browsers.py), against a real `run.py` server on the bundled data.

Expected values come from the JSON API of the same server, which `test_dashboard.py`
checks against independent computations. Screenshots land in test-artifacts/screenshots/
(kept by CI, ignored by git).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from browsers import assert_accessible, screenshot
from conftest import GOLDEN_DIR, PROJECT_DIR
from servers import Server

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`run.py` on a fresh SQLite file, loading the bundled data at start."""
    folder = tmp_path_factory.mktemp("browser")
    running = Server(folder, DATABASE_URL=f"sqlite:///{folder / 'dashboard.sqlite3'}",
                     STORE_DATA=str(PROJECT_DIR / "data" / "store-monitoring-data.zip"))
    running.start(timeout=120)
    yield running
    running.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors  # no script failed on any page


def api(server, path, **params):
    answer = requests.get(f"{server.url}{path}", params=params, timeout=10)
    answer.raise_for_status()
    return answer


def run_report_by_click(page, server):
    """Click "Run report", watch the progress bar, and land on the finished report."""
    page.goto(server.url + "/")
    # Record every value the progress bar shows until the page moves on.
    page.evaluate("""() => {
        window.seen = [];
        const bar = document.getElementById('progress');
        new MutationObserver(() => window.seen.push(bar.value))
            .observe(bar, {attributes: true, childList: true});
        sessionStorage.setItem('seen', '[]');
        // Leaving runs before pending observer callbacks: read the bar once more.
        window.addEventListener('beforeunload', () => sessionStorage.setItem(
            'seen', JSON.stringify([...window.seen, bar.value])));
    }""")
    page.get_by_role("button", name="Run report").click()
    page.wait_for_url("**/reports/*", timeout=60_000)
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('seen'))")
    assert seen and seen[-1] == 1 and seen == sorted(seen), seen
    return page.url.rsplit("/", 1)[1]


def test_run_report_download_sort_search_and_open_a_store(page, server):
    report_id = run_report_by_click(page, server)
    assert "Complete" in page.locator("h1").inner_text()
    summary = api(server, f"/api/v1/reports/{report_id}").json()
    assert page.locator("#fig-stores").inner_text() == f"{summary['figures']['stores']:,}"
    screenshot(page, "report")

    # The CSV download is the API's CSV, byte for byte.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = Path(download.value.path()).read_text()
    assert saved == api(server, "/get_report", report_id=report_id, format="csv").text
    assert download.value.suggested_filename == f"report-{report_id}.csv"

    def table_ids():
        return page.locator("#rows-table tbody tr td:first-child").all_inner_texts()

    # Sort by downtime: one click ascending, a second descending.
    page.get_by_role("link", name="Down, last week (h)").click()
    page.get_by_role("link", name="Down, last week (h)").click()
    assert "order=desc" in page.url
    expected = api(server, f"/api/v1/reports/{report_id}/rows", sort="downtime_last_week",
                   order="desc", per_page=50).json()
    assert table_ids() == [r["store_id"] for r in expected["rows"]]
    header = page.locator("#rows-table th[aria-sort='descending']")
    assert "Down, last week" in header.inner_text()

    # Search keeps the sort and pages on the server.
    page.get_by_label("Store id contains").fill("12")
    page.get_by_label("Store id contains").press("Enter")
    page.wait_for_url("**q=12**")
    expected = api(server, f"/api/v1/reports/{report_id}/rows", sort="downtime_last_week",
                   order="desc", q="12", per_page=50).json()
    assert table_ids() == [r["store_id"] for r in expected["rows"]]
    assert page.locator("#rows-count").inner_text().startswith(f"{expected['total']} stores")

    # The store with most downtime: its incidents and chart are the timeline's.
    worst = summary["top_downtime"][0]["store_id"]
    page.locator("#top-table").get_by_role("link", name=worst).click()
    page.wait_for_url(f"**/stores/{worst}**")
    timeline = api(server, f"/api/v1/stores/{worst}/timeline").json()
    rows = page.locator("#incidents-table tbody tr")
    assert rows.count() == len(timeline["incidents"]) > 0
    shown = [(rows.nth(i).get_attribute("data-start"), rows.nth(i).get_attribute("data-end"))
             for i in range(rows.count())]
    assert shown == [(i["start"], i["end"]) for i in timeline["incidents"]]
    first_local = timeline["incidents"][0]["start_local"][:19].replace("T", " ")
    assert rows.nth(0).locator("td").nth(0).inner_text() == first_local
    chart = page.evaluate("""() => {
        const c = window.storeMonitorCharts;
        return {x: Array.from(c.week.data[0]), up: Array.from(c.week.data[1]),
                drawn: c.weekDrawn, source: c.weekSource, days: Array.from(c.days.data[2])};
    }""")
    assert chart["x"] == [pytest.approx(_epoch(t)) for t, _ in timeline["polls"]]
    assert [v == 1 for v in chart["up"]] == [active for _, active in timeline["polls"]]
    assert chart["drawn"] == {"business": len(timeline["business"]),
                              "segments": len(timeline["segments"])}
    assert chart["source"]["segments"] == [
        [pytest.approx(_epoch(a)), pytest.approx(_epoch(b)), s] for a, b, s in
        timeline["segments"]]
    assert chart["days"] == [d["downtime_hours"] for d in timeline["days"]]
    screenshot(page, "store")


def _epoch(iso):
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_dashboard_keyboard_and_accessibility(page, server):
    report_id = requests.post(f"{server.url}/trigger_report", timeout=10).json()["report_id"]
    server.wait_for_report(report_id)
    page.goto(server.url + "/")
    # The first Tab reaches the skip link, and focus is drawn.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    for _ in range(100):  # past the links of the data summary and of "Now"
        if page.evaluate("document.activeElement.id") == "run-report":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "run-report"
    assert page.locator(f"#reports-table a[href='/reports/{report_id}']").count() == 1
    screenshot(page, "index")
    assert_accessible(page)

    page.goto(f"{server.url}/reports/{report_id}")
    assert_accessible(page)
    store = api(server, f"/api/v1/reports/{report_id}").json()["top_downtime"][0]["store_id"]
    page.goto(f"{server.url}/stores/{store}")
    assert_accessible(page)

    # On a phone-sized screen the pages still fit: no sideways scrolling of the page.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/", f"/reports/{report_id}", f"/stores/{store}"):
        page.goto(server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    screenshot(page, "store-phone")


def test_without_javascript_the_form_leads_to_the_report(browser, server):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.get_by_role("button", name="Run report").click()
        page.wait_for_url("**/reports/*")
        # Running: the page refreshes itself until the report is Complete.
        page.locator("#download-csv").wait_for(timeout=60_000)
        assert "Complete" in page.locator("h1").inner_text()
        assert page.locator("#rows-table tbody tr").count() == 50
    finally:
        context.close()


def test_with_api_keys_the_dashboard_asks_for_one_and_works_signed_in(page, tmp_path):
    """A browser cannot send a Bearer header: once keys exist, pages lead to a sign-in form,
    and the signed-in dashboard (its own calls to the API included) works with the cookie."""
    database_url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    created = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "keys", "create", "browser"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DATABASE_URL": database_url, "STORE_DATA": ""})
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    server = Server(tmp_path, DATABASE_URL=database_url,
                    STORE_DATA=str(GOLDEN_DIR / "a_spec_example")).start(timeout=120)
    try:
        page.goto(server.url + "/")
        page.wait_for_url("**/signin?next=/")
        assert_accessible(page)
        page.get_by_label("API key").fill("smk_not_a_key")
        page.get_by_role("button", name="Sign in").click()
        assert "not valid" in page.get_by_role("alert").inner_text()
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(server.url + "/")
        screenshot(page, "signed-in")
        report_id = run_report_by_click(page, server)  # its progress bar polls the API
        assert "Complete" in page.locator("h1").inner_text()
        # The API itself still wants the key from anything but this browser.
        refused = requests.get(f"{server.url}/get_report", params={"report_id": report_id},
                               timeout=10)
        assert refused.status_code == 401 and refused.json()["error"] == "Unauthorized"
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/signin")
        page.goto(f"{server.url}/reports/{report_id}")
        page.wait_for_url(f"**/signin?next=/reports/{report_id}")
    finally:
        server.stop()
