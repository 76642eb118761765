"""What the live state (app.live) adds to an ingest: the first computation on a big
database, then each hourly ingest (one poll per store).

    python -m bench.live --stores 14000 --days 8 --hours 5
    python -m bench.live --stores 140000 --days 2 --hours 5
    python -m bench.live --stores 14000 --database-url postgresql+psycopg://USER@HOST/DB

A fresh database (a SQLite file, or a new schema of the PostgreSQL database, dropped at the
end) gets the generated data set in one ingest, then `--hours` files of the hours after it.
Each ingest is timed whole, and its live-state step (the `polls_loaded` hook: states,
incidents and webhook events, in the ingest's transaction) on its own. Prints the date, the
machine and its load, and per ingest both times; the hourly figures' median and largest.

`--copy` keeps the columnar copy of the data (in the temporary folder), as the service does
by default: ingest then sends every poll to the hook (`stored_polls`). `--cold` drops what
the process keeps between ingests (live rows, hours, zones) before each hourly one, as a
`flask ingest` started each hour would.

A development tool, apart from the service: it needs the dev requirements. Run it from the
repository root.
"""

import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import click
import sqlalchemy as sa
from sqlalchemy.engine import make_url


def data_folders(cache_dir, stores, days, seed, hours):
    """The data set and its next `hours` hourly files, generated once per size and seed."""
    from bench.generate import generate_dataset, next_hours, write_dataset, write_status

    base = Path(cache_dir) / f"stores{stores}-days{days}-seed{seed}"
    if not (base / "store_status.csv").exists():
        write_dataset(generate_dataset(stores, days, seed), base)
    folders = [base / f"live-hour-{hour + 1}-of-{hours}" for hour in range(hours)]
    if not all((folder / "store_status.csv").exists() for folder in folders):
        status = next_hours(stores, seed, hours=hours).status
        for hour, folder in enumerate(folders):
            part = status.iloc[hour * stores:(hour + 1) * stores].reset_index(drop=True)
            write_status(type("Hour", (), {"status": part}), folder)
    return base, folders


class HookTimer:
    """Times app.live's receiver of `polls_loaded` (connected in its place)."""

    def __init__(self, app):
        from app.ingest.load import polls_loaded
        from app.live import incidents

        self.seconds = None
        polls_loaded.disconnect(incidents.on_polls_loaded, app)

        def timed(sender, **kwargs):
            began = time.perf_counter()
            incidents.on_polls_loaded(sender, **kwargs)
            self.seconds = time.perf_counter() - began

        self._receiver = timed  # the signal holds it weakly otherwise
        polls_loaded.connect(timed, app, weak=False)


def measure(database_url, base, folders, echo, copy_dir="", cold=False):
    from app import create_app
    from app.ingest.load import ingest
    from app.storage import database

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
                      "STORE_DATA": "", "SNAPSHOT_COPY_DIR": str(copy_dir)})
    database.upgrade(app)
    timer = HookTimer(app)
    hourly = []
    with app.app_context():
        for label, folder in [("whole data set", base)] + [
                (f"hour {n + 1}", f) for n, f in enumerate(folders)]:
            if cold and folder is not base:
                app.extensions.pop("live_kept", None)
            began = time.perf_counter()
            summary = ingest(folder)
            total = time.perf_counter() - began
            polls = sum(f.loaded for f in summary.files if f.kind == "status")
            echo(f"  {label:>15}: {polls:>10,} polls, ingest {total:6.2f} s, of which live "
                 f"state {timer.seconds:6.3f} s")
            if folder is not base:
                hourly.append(timer.seconds)
    return hourly


def fresh_database(database_url, work):
    """An empty database: a SQLite file in `work`, or a new schema; and how to drop it."""
    if database_url is None:
        return f"sqlite:///{work / 'live.sqlite3'}", lambda: None
    schema = f"bench_live_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(database_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop():
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


@click.command()
@click.option("--stores", default=14_000, show_default=True)
@click.option("--days", default=8, show_default=True, help="Days of polls before the hours.")
@click.option("--hours", default=5, show_default=True, help="Hourly ingests measured.")
@click.option("--seed", default=1, show_default=True)
@click.option("--cache-dir", default="bench-cache", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where generated data sets are kept between runs.")
@click.option("--database-url", default=None,
              help="A PostgreSQL database to measure on (in a schema of its own) instead of "
                   "a SQLite file.")
@click.option("--copy/--no-copy", default=False, show_default=True,
              help="Keep the columnar copy of the data, as the service does by default.")
@click.option("--cold", is_flag=True,
              help="Forget what the process keeps between ingests before each hourly one.")
def main(stores, days, hours, seed, cache_dir, database_url, copy, cold):
    """Measure what live state adds to the first and to hourly ingests."""
    base, folders = data_folders(cache_dir, stores, days, seed, hours)
    kind = "SQLite" if database_url is None else "PostgreSQL"
    machine = platform.processor() or platform.machine()
    click.echo(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine}, "
               f"{os.cpu_count()} CPUs, load average "
               f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; {kind}; {stores:,} stores, "
               f"{days} days, then {hours} hourly ingests of one poll per store"
               f"{'; columnar copy' if copy else ''}{'; cold process each hour' if cold else ''}")
    with tempfile.TemporaryDirectory(prefix="bench-live-") as work:
        url, drop = fresh_database(database_url, Path(work))
        try:
            hourly = measure(url, base, folders, click.echo,
                             copy_dir=Path(work) / "copies" if copy else "", cold=cold)
        finally:
            drop()
    click.echo(f"live state per hourly ingest: median {statistics.median(hourly):.3f} s, "
               f"largest {max(hourly):.3f} s (load average now "
               f"{', '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
