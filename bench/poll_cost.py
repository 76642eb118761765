"""In-process cost of one poll of a Complete report (JSON), the service's most frequent
request, through Flask's test client: the app's own time, without a network or a server.

    python -m bench.poll_cost [--polls 2000] [--rounds 7] [--key]
    TRIGGER_RATE_LIMIT= python -m bench.poll_cost     # no rate limit: no limiter at all

With `--key`, an API key exists and every poll sends it (`Authorization: Bearer`): the
cost of the key check, against the same run without.

Prints the median, fastest and slowest round in µs per poll, with the date, the machine
and its load, on an empty SQLite database in a temporary folder.
"""

import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone

import click


@click.command()
@click.option("--polls", default=2000, show_default=True, help="Polls per round.")
@click.option("--rounds", default=7, show_default=True, help="Rounds (median reported).")
@click.option("--key", is_flag=True, help="Create an API key and send it with every poll.")
def main(polls, rounds, key):
    from app import create_app
    from app.storage import database

    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"TESTING": True, "STORE_DATA": "",
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.sqlite3"})
        database.upgrade(app)
        client = app.test_client()
        headers = {}
        if key:
            from app.auth.keys import create_key
            with app.app_context():
                headers["Authorization"] = f"Bearer {create_key('bench')}"
        report_id = client.post("/trigger_report", headers=headers).get_json()["report_id"]
        url = f"/get_report?report_id={report_id}&format=json"
        while client.get(url, headers=headers).get_json()["status"] == "Running":
            time.sleep(0.05)
        per_poll_us = []
        for _ in range(rounds):
            began = time.perf_counter()
            for _ in range(polls):
                client.get(url, headers=headers)
            per_poll_us.append((time.perf_counter() - began) / polls * 1e6)
        app.extensions["report_runner"].shutdown()
    limits = app.config["TRIGGER_RATE_LIMIT"] or app.config["REQUEST_RATE_LIMIT"] or "none"
    machine = platform.processor() or platform.machine()
    click.echo(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine}, "
               f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; rate limits: {limits}; "
               f"{'with' if key else 'without'} an API key")
    click.echo(f"µs per poll: median {statistics.median(per_poll_us):.0f}, "
               f"min {min(per_poll_us):.0f}, max {max(per_poll_us):.0f} "
               f"({rounds} rounds of {polls})")


if __name__ == "__main__":
    main()
