"""Server time of the dashboard and the API's answers: home page, report page, rows pages,
store timelines and pages, what is loaded, the live state and incidents.

    python -m bench.pages --database-url sqlite:////abs/path.sqlite3

Requests go through Flask's test client inside one process, so the figures are the
server's own time (routing, database, engine, template or JSON), without any network. The
first request of a kind is shown apart: it reads and parses the report's CSV (or finds
`now`) once for the process; the others are medians over `repeat` requests.
"""

import os
import random
import statistics
import time

import click


def _timed(client, url):
    began = time.perf_counter()
    answer = client.get(url)
    elapsed = time.perf_counter() - began
    if answer.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {answer.status_code} "
                           f"{answer.get_data(as_text=True)[:200]}")
    return elapsed, answer


def _complete_report(client, timeout=600):
    """The newest Complete report, computing one first if there is none."""
    reports = client.get("/api/v1/reports?limit=50").get_json()["reports"]
    done = [r for r in reports if r["status"] == "Complete"]
    if done:
        return done[0]["report_id"]
    report_id = client.post("/trigger_report").get_json()["report_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/reports/{report_id}").get_json()["status"]
        if status == "Complete":
            return report_id
        if status == "Error":
            raise RuntimeError(f"report {report_id} failed")
        time.sleep(0.2)
    raise RuntimeError(f"report {report_id} still Running after {timeout} s")


def time_pages(app, echo, repeat=20, seed=0):
    """Echo a table of request times [ms] on the app's database, which holds data."""
    client = app.test_client()
    report_id = _complete_report(client)
    pages = _timed(client, f"/api/v1/reports/{report_id}/rows?per_page=500")[1].get_json()
    stores = [row["store_id"] for row in pages["rows"]]
    rows_url = f"/api/v1/reports/{report_id}/rows"
    picks = random.Random(seed)
    cases = {
        "home page": lambda: "/",
        "data API (what is loaded)": lambda: "/api/v1/data",
        "live status API": lambda: "/api/v1/status",
        "live stores API, down": lambda: "/api/v1/stores?state=down&limit=100",
        "incidents API, open": lambda: "/api/v1/incidents?state=open&limit=100",
        "incidents page": lambda: "/incidents",
        "report page": lambda: f"/reports/{report_id}",
        "report page, sorted, page 100": lambda: (
            f"/reports/{report_id}?sort=downtime_last_week&order=desc&page=100"),
        "rows API, sorted, page 100": lambda: (
            f"{rows_url}?sort=uptime_last_week_pct&order=desc&page=100&per_page=50"),
        "rows API, searched": lambda: f"{rows_url}?q={picks.choice(stores)[:3]}&per_page=50",
        "store timeline API": lambda: f"/api/v1/stores/{picks.choice(stores)}/timeline",
        "store page": lambda: f"/stores/{picks.choice(stores)}",
    }
    first = {}
    # The first request of each kind pays the one-off work of this process.
    for name, url in cases.items():
        first[name] = _timed(client, url())[0]
    echo(f"{'request (server time, ms)':<34}{'first':>8}{'median':>8}{'max':>8}")
    for name, url in cases.items():
        times = [_timed(client, url())[0] for _ in range(repeat)]
        echo(f"{name:<34}{first[name] * 1e3:>8.1f}{statistics.median(times) * 1e3:>8.1f}"
             f"{max(times) * 1e3:>8.1f}")
    echo(f"({repeat} requests each after the first, Flask test client, report {report_id})")


@click.command()
@click.option("--database-url", required=True,
              help="A database holding data (and maybe reports); a report is made if none is.")
@click.option("--repeat", default=20, show_default=True, help="Requests per kind after the first.")
def main(database_url, repeat):
    """Server time of the dashboard's pages and JSON on an existing database."""
    from app import create_app
    from app.storage import database

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "STORE_DATA": "",
                      "TESTING": True})
    database.upgrade(app)
    click.echo(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    try:
        time_pages(app, click.echo, repeat)
    finally:
        app.extensions["report_runner"].shutdown()


if __name__ == "__main__":
    main()
