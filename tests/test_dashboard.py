"""The /api/v1 endpoints and the dashboard pages, through Flask's test client.

Expected values are worked out independently of the code under test: rows are sorted,
searched and paged here with plain Python over the report's own CSV; figures come from the
`statistics` module; the timeline of the first worked example of docs/report.md is written
out by hand.
"""

import csv
import io
import statistics
import threading
from datetime import datetime

import pytest
from conftest import BUNDLED_DATA, GOLDEN_DIR, write_csv

from app.ingest.load import ingest
from app.reports import pipeline
from app.reports.table import ReportTable

SPEC_CASE = GOLDEN_DIR / "a_spec_example"
NUMERIC = ["uptime_last_hour", "uptime_last_day", "uptime_last_week", "downtime_last_hour",
           "downtime_last_day", "downtime_last_week"]


@pytest.fixture
def bundled_report(app, client, reports):
    """The bundled data loaded, one Complete report; returns (report id, CSV rows)."""
    with app.app_context():
        ingest(BUNDLED_DATA)
    report_id = reports.trigger()
    text = reports.wait(report_id).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        for column in NUMERIC:
            row[column] = float(row[column])
        business = row["uptime_last_week"] + row["downtime_last_week"]
        row["uptime_last_week_pct"] = (round(100 * row["uptime_last_week"] / business, 2)
                                       if business else None)
    return report_id, rows


def expected_page(rows, sort, order, q, page, per_page):
    """Sort (ties by store id; no uptime share last), search and page in plain Python."""
    chosen = [r for r in rows if q.lower() in r["store_id"].lower()]
    if sort == "store_id":
        chosen.sort(key=lambda r: r["store_id"], reverse=order == "desc")
    else:
        present = sorted((r for r in chosen if r[sort] is not None), key=lambda r: r["store_id"])
        present.sort(key=lambda r: r[sort], reverse=order == "desc")
        chosen = present + [r for r in chosen if r[sort] is None]
    return [r["store_id"] for r in chosen[(page - 1) * per_page:page * per_page]], len(chosen)


@pytest.mark.parametrize("sort, order, q, page, per_page", [
    ("store_id", "asc", "", 1, 50),
    ("store_id", "desc", "", 2, 50),
    ("downtime_last_week", "desc", "", 1, 20),
    ("uptime_last_hour", "asc", "", 3, 7),
    ("uptime_last_week_pct", "asc", "", 1, 25),
    ("downtime_last_day", "desc", "12", 1, 500),
    ("store_id", "asc", "ABC", 1, 10),  # the ids with letters are lower-case
    ("store_id", "asc", "no such store", 1, 10),
])
def test_rows_are_sorted_searched_and_paged(client, bundled_report, sort, order, q, page,
                                            per_page):
    report_id, rows = bundled_report
    answer = client.get(f"/api/v1/reports/{report_id}/rows", query_string={
        "sort": sort, "order": order, "q": q, "page": page, "per_page": per_page})
    assert answer.status_code == 200
    body = answer.get_json()
    ids, total = expected_page(rows, sort, order, q, page, per_page)
    assert [r["store_id"] for r in body["rows"]] == ids
    assert body["total"] == total and body["pages"] == max(1, -(-total // per_page))
    by_id = {r["store_id"]: r for r in rows}
    for row in body["rows"]:
        assert row == by_id[row["store_id"]]


def test_summary_figures_histogram_and_top_stores(client, bundled_report):
    report_id, rows = bundled_report
    body = client.get(f"/api/v1/reports/{report_id}").get_json()
    assert body["status"] == "Complete" and body["rows"] == len(rows)
    shares = [100 * r["uptime_last_week"] / (r["uptime_last_week"] + r["downtime_last_week"])
              for r in rows if r["uptime_last_week"] + r["downtime_last_week"] > 0]
    figures = body["figures"]
    assert figures["stores"] == len(rows)
    assert figures["stores_down_last_day"] == sum(r["downtime_last_day"] > 0 for r in rows)
    # The table keeps shares to 2 decimals, hence the tolerance.
    assert figures["median_uptime_last_week_pct"] == pytest.approx(statistics.median(shares),
                                                                   abs=0.01)
    p10 = statistics.quantiles(shares, n=10, method="inclusive")[0]
    assert figures["p10_uptime_last_week_pct"] == pytest.approx(p10, abs=0.01)
    # Ten bins of the narrowest of 0.1, 0.2, 0.5, 1, 2, 5, 10 points ending at 100 % that
    # reach down to the 5th percentile, and one from 0 % for the stores below them.
    low = statistics.quantiles(shares, n=20, method="inclusive")[0]
    width = next(w for w in (0.1, 0.2, 0.5, 1, 2, 5, 10) if 100 - 10 * w <= low)
    edges = [round(100 - width * k, 1) for k in range(10, -1, -1)]
    shown = [round(share, 2) for share in shares]
    if min(shown) < edges[0]:
        edges = [0.0, *edges]
    bands = [0] * (len(edges) - 1)
    for share in shown:
        bands[max(i for i in range(len(bands)) if edges[i] <= share)] += 1
    assert body["histogram"] == {"edges": edges, "counts": bands}
    assert sum(bands[-10:]) >= 0.95 * len(shares)
    top, _ = expected_page([r for r in rows if r["downtime_last_week"] > 0],
                           "downtime_last_week", "desc", "", 1, 20)
    assert [r["store_id"] for r in body["top_downtime"]] == top

    listed = client.get("/api/v1/reports").get_json()["reports"]
    assert [r["report_id"] for r in listed] == [report_id]
    assert listed[0]["rows"] == len(rows)
    # The time from trigger to end, worked out from the two instants the list shows.
    created, finished = (datetime.fromisoformat(listed[0][k]) for k in ("created_at",
                                                                         "finished_at"))
    assert listed[0]["seconds"] == round((finished - created).total_seconds(), 2)
    assert finished >= created


def test_timeline_totals_equal_the_report_row(client, bundled_report):
    report_id, rows = bundled_report
    for row in sorted(rows, key=lambda r: -r["downtime_last_week"])[:5] + rows[:3]:
        timeline = client.get(f"/api/v1/stores/{row['store_id']}/timeline").get_json()
        # The CSV rounds to 2 decimals, the timeline to 4.
        assert timeline["uptime_last_week_hours"] == pytest.approx(row["uptime_last_week"],
                                                                   abs=0.0051)
        assert timeline["downtime_last_week_hours"] == pytest.approx(
            row["downtime_last_week"], abs=0.0051)
        minutes = sum(i["minutes"] for i in timeline["incidents"])
        assert minutes == pytest.approx(row["downtime_last_week"] * 60, abs=0.3 + 1e-3)
        starts = [i["start"] for i in timeline["incidents"]]
        assert starts == sorted(starts, reverse=True)


def test_timeline_of_the_spec_example(app, client):
    # docs/report.md, worked example "A short Monday": Monday 2023-01-23 09:00-12:00 EST
    # is 14:00-17:00 UTC; up until the midpoint 10:44:30 EST, then down 75.5 minutes.
    with app.app_context():
        ingest(SPEC_CASE)
    timeline = client.get("/api/v1/stores/1001/timeline").get_json()
    assert timeline["timezone"] == "America/New_York"
    assert timeline["now"] == "2023-01-25T18:00:00Z"
    assert timeline["window"] == ["2023-01-18T18:00:00Z", "2023-01-25T18:00:00Z"]
    assert timeline["business"] == [["2023-01-23T14:00:00Z", "2023-01-23T17:00:00Z"]]
    assert timeline["polls"] == [["2023-01-23T12:30:00Z", False], ["2023-01-23T15:14:00Z", True],
                                 ["2023-01-23T16:15:00Z", False], ["2023-01-23T17:30:00Z", False]]
    assert timeline["segments"] == [["2023-01-23T14:00:00Z", "2023-01-23T15:44:30Z", True],
                                    ["2023-01-23T15:44:30Z", "2023-01-23T17:00:00Z", False]]
    assert timeline["incidents"] == [{
        "start": "2023-01-23T15:44:30Z", "end": "2023-01-23T17:00:00Z",
        "start_local": "2023-01-23T10:44:30-05:00", "end_local": "2023-01-23T12:00:00-05:00",
        "minutes": 75.5}]
    # Hours to 2 decimals, as the CSV has them: 104.5 min = 1.7417 h, 75.5 min = 1.2583 h.
    assert timeline["uptime_last_week_hours"] == 1.74
    assert timeline["downtime_last_week_hours"] == 1.26
    assert timeline["hours"] == [{"day_of_week": 0, "day": "Monday", "start": "09:00",
                                  "end": "12:00", "overnight": False}]
    monday = next(d for d in timeline["days"] if d["date"] == "2023-01-23")
    assert (monday["business_hours"], monday["uptime_hours"]) == (3.0, 1.74)

    # Store 9999's only poll is outside its hours: no segments, no incidents.
    empty = client.get("/api/v1/stores/9999/timeline").get_json()
    assert empty["segments"] == [] and empty["incidents"] == []
    assert empty["downtime_last_week_hours"] == 0


def test_unknown_things_are_404_and_unfinished_rows_409(app, client, monkeypatch):
    for url in ("/api/v1/stores/nope/timeline", "/stores/nope",
                "/api/v1/reports/00000000-0000-4000-8000-000000000000",
                "/api/v1/reports/00000000-0000-4000-8000-000000000000/rows",
                "/reports/00000000-0000-4000-8000-000000000000", "/reports/not-a-uuid"):
        assert client.get(url).status_code == 404, url
    assert client.get("/api/v1/stores/nope/timeline").get_json()["error"] == "Not Found"
    assert client.get("/api/v1/reports?limit=0").status_code == 400

    release = threading.Event()
    monkeypatch.setattr(pipeline, "compute_report",
                        lambda progress=None, as_of_us=None: release.wait(10) and None)
    report_id = client.post("/trigger_report").get_json()["report_id"]
    try:
        answer = client.get(f"/api/v1/reports/{report_id}/rows")
        assert answer.status_code == 409 and "Running" in answer.get_json()["message"]
        page = client.get(f"/reports/{report_id}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        # Without JavaScript the page refreshes itself; with it, it polls the JSON answer.
        assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html
        assert 'id="progress"' in html
        assert client.get(f"/api/v1/reports/{report_id}").get_json()["status"] == "Running"
    finally:
        release.set()


def test_pages_without_javascript(client, bundled_report):
    report_id, rows = bundled_report
    started = client.post("/reports")
    assert started.status_code == 303
    assert started.headers["Location"].startswith("/reports/")

    home = client.get("/").get_data(as_text=True)
    assert 'action="/reports"' in home and f'href="/reports/{report_id}"' in home

    # The table opens on the stores with most downtime last week.
    first = max(rows, key=lambda r: r["downtime_last_week"])["store_id"]
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert f'href="/stores/{first}?report={report_id}"' in page
    assert f"{len(rows)} stores" in page and "page 1 of 6" in page
    assert f'href="/get_report?report_id={report_id}&amp;format=csv"' in page

    q = rows[0]["store_id"][:4]
    searched = client.get(f"/reports/{report_id}?q={q}&sort=downtime_last_week&order=desc")
    matches = sum(q in r["store_id"] for r in rows)
    text = searched.get_data(as_text=True)
    assert f"{matches} store" in text and 'aria-sort="descending"' in text

    worst = max(rows, key=lambda r: r["downtime_last_week"])["store_id"]
    store = client.get(f"/stores/{worst}").get_data(as_text=True)
    timeline = client.get(f"/api/v1/stores/{worst}/timeline").get_json()
    assert store.count("<tr data-start=") == len(timeline["incidents"]) > 0
    assert f'data-start="{timeline["incidents"][0]["start"]}"' in store


def test_timeline_follows_a_new_ingest(app, client, tmp_path):
    # `now` is kept per data version: a later poll loaded afterwards moves the window.
    with app.app_context():
        ingest(SPEC_CASE)
    assert client.get("/api/v1/stores/1001/timeline").get_json()["now"] == "2023-01-25T18:00:00Z"
    later = write_csv(tmp_path / "later", "store_status.csv", """
        store_id,timestamp_utc,status
        9999,2023-01-26 18:00:00 UTC,active""")
    with app.app_context():
        ingest(later)
    timeline = client.get("/api/v1/stores/1001/timeline").get_json()
    assert timeline["now"] == "2023-01-26T18:00:00Z"
    assert timeline["window"][0] == "2023-01-19T18:00:00Z"


def test_a_store_without_business_time_has_no_uptime_share():
    # By hand: "b" is up 3 of 4 hours (75 %), "c" all 10 (100 %), "a" has no business time
    # in the week: no share, sorted last either way, left out of the figures.
    table = ReportTable.from_csv(
        "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,"
        "downtime_last_day,downtime_last_week\n"
        "a,0.00,0.00,0.00,0.00,0.00,0.00\nb,0.00,1.00,3.00,0.00,0.50,1.00\n"
        "c,60.00,10.00,10.00,0.00,0.00,0.00\n")
    for order in (False, True):
        rows, total = table.page("uptime_last_week_pct", order)
        assert [r["store_id"] for r in rows] == (["c", "b", "a"] if order else ["b", "c", "a"])
    assert rows[2]["uptime_last_week_pct"] is None and rows[1]["uptime_last_week_pct"] == 75.0
    assert table.figures() == {"stores": 3, "stores_with_business_time": 2,
                               "stores_down_last_day": 1, "median_uptime_last_week_pct": 87.5,
                               "p10_uptime_last_week_pct": 77.5}
    # The 5th percentile of 75 and 100 is 76.25: ten 5-point bins from 50 %.
    assert table.histogram() == {"edges": list(range(50, 101, 5)),
                                 "counts": [0] * 5 + [1, 0, 0, 0, 1]}
    assert [r["store_id"] for r in table.top_downtime()] == ["b"]
