"""Time and peak memory of each step of a report, on generated data of a chosen size.

    python -m bench.report --stores 14000 --days 8 --repeat 5
    python -m bench.report --stores 14000 --days 8 --repeat 3 --cold
    python -m bench.report --repeat 3 --database-url postgresql+psycopg://USER@HOST/DB

Each measured step runs in a fresh process, so that its peak resident memory is its own:
ingest into an empty database, reading the report snapshot, the engine (snapshot in memory
-> CSV text), and a report through a real server (`run.py`) from trigger to CSV. With
`--dask-workers N` (PostgreSQL only), the same report is also computed on a local Dask
cluster of N one-thread worker processes: by the job alone, and through `run.py`.

A development tool, apart from the service: it needs the dev requirements, and starts and
polls servers with the tests' helpers (`tests/servers.py`). Run it from the repository root.
"""

import importlib
import math
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.storage.database import is_postgresql
from tests.servers import Server, child_pids

END_TO_END_TIMEOUT_S = 3600  # a report of tens of millions of polls on a busy machine


def dataset_path(cache_dir, stores, days, seed):
    """Generate the data set once per (stores, days, seed) and return its folder."""
    import pyarrow as pa

    from bench.generate import write_streamed

    folder = Path(cache_dir) / f"stores{stores}-days{days}-seed{seed}"
    if not (folder / "store_status.csv").exists():
        pa.set_memory_pool(pa.jemalloc_memory_pool())  # flat while groups come and go
        write_streamed(folder, stores, days, seed)
    return folder


def next_hour_paths(folder, stores, seed, hours):
    """Files of the `hours` hours after the data set in `folder` (one poll per store each),
    generated once."""
    from bench.generate import next_hours, write_status

    paths = [folder / f"next-hour-{hour + 1}" for hour in range(hours)]
    if not all((path / "store_status.csv").exists() for path in paths):
        status = next_hours(stores, seed, hours=hours).status
        for hour, path in enumerate(paths):
            part = status.iloc[hour * stores:(hour + 1) * stores]
            write_status(type("Hour", (), {"status": part.reset_index(drop=True)}), path)
    return paths


def _app(database_url):
    from app import create_app
    from app.storage import database

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
                      "STORE_DATA": ""})
    database.upgrade(app)
    return app


def _step_ingest(database_url, path):
    from app.ingest.load import ingest

    with _app(database_url).app_context():
        began = time.perf_counter()
        summary = ingest(path)
        return time.perf_counter() - began, sum(f.loaded for f in summary.files)


def _step_duckdb(_database_url, path):
    """The reference for ingest: DuckDB reads the three CSV files into in-memory tables."""
    import duckdb

    path = Path(path)
    with duckdb.connect() as conn:
        began = time.perf_counter()
        for table, name in (("status", "store_status.csv"), ("hours", "business_hours.csv"),
                            ("zones", "store_timezone.csv")):
            conn.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv(?)",
                         [str(path / name)])
        seconds = time.perf_counter() - began
        return seconds, conn.execute("SELECT count(*) FROM status").fetchone()[0]


def _step_snapshot(database_url, _path):
    from app.storage.snapshot import read_snapshot

    with _app(database_url).app_context():
        began = time.perf_counter()
        snapshot = read_snapshot()
        return time.perf_counter() - began, len(snapshot.polls)


def _step_engine(database_url, _path):
    from app.engine import build_report
    from app.reports.export import report_csv
    from app.storage.snapshot import read_snapshot

    app = _app(database_url)
    with app.app_context():
        snapshot = read_snapshot()
    began = time.perf_counter()
    result = build_report(snapshot.polls, snapshot.hours, snapshot.zones,
                          threads=app.config["ENGINE_THREADS"])
    report_csv(result.frame)
    return time.perf_counter() - began, len(result.frame)


def _step_cluster(database_url, _path):
    """The report on the cluster named by DASK_SCHEDULER, as a job computes it (-> CSV)."""
    from app.cluster.compute import Settings, compute_on_cluster
    from app.extensions import db
    from app.reports.export import report_csv

    importlib.import_module("distributed")  # once per service process, not per report
    app = _app(database_url)
    with app.app_context():
        began = time.perf_counter()
        report = compute_on_cluster(db.engine.url, Settings.from_config(app.config))
        report_csv(report.frame)
        seconds = time.perf_counter() - began
    reads = [part.read_s for part in report.parts]
    engines = [part.engine_s for part in report.parts]
    print(f"  cluster: {report.tasks} tasks of at most {app.config['DASK_MAX_POLLS_PER_TASK']:,}"
          f" polls; planning (view + polls per store) {report.plan_s:.2f} s; per task: read "
          f"median {statistics.median(reads):.2f} s, engine median "
          f"{statistics.median(engines):.2f} s; sum over tasks {sum(reads) + sum(engines):.2f} s",
          flush=True)
    return seconds, len(report.frame)


def _step_hourly(database_url, paths):
    """Into the database the whole set was loaded into: each hour's file, then a report
    right after it (snapshot, engine and CSV), each timed in this process. Each report is
    let go before the next hour, as a service's report job lets go of its own (held, it
    is a second report's memory for the next hour's ingest and report to work beside)."""
    from app.engine import build_report
    from app.ingest.load import ingest
    from app.reports.export import report_csv
    from app.storage.snapshot import read_snapshot

    app = _app(database_url)
    times = {"hourly ingest": [], "  of which live state": [], "report after it": []}
    _timed_receivers(app, times["  of which live state"])
    with app.app_context():
        for path in paths.split(os.pathsep):
            began = time.perf_counter()
            ingest(path)
            times["hourly ingest"].append(time.perf_counter() - began)
            began = time.perf_counter()
            snapshot = read_snapshot()
            result = build_report(snapshot.polls, snapshot.hours, snapshot.zones,
                                  threads=app.config["ENGINE_THREADS"])
            report_csv(result.frame)
            times["report after it"].append(time.perf_counter() - began)
            polls = len(snapshot.polls)
            del snapshot, result
    return times, polls


def _timed_receivers(app, times):
    """Time what `polls_loaded`'s receivers (the live state, issue 20) take of an ingest."""
    from app.ingest.load import polls_loaded

    for receiver in list(polls_loaded.receivers_for(app)):
        polls_loaded.disconnect(receiver, sender=app)

        def timed(sender, receiver=receiver, **changes):
            began = time.perf_counter()
            try:
                return receiver(sender, **changes)
            finally:
                times.append(time.perf_counter() - began)

        polls_loaded.connect(timed, app, weak=False)


STEPS = {"duckdb": _step_duckdb, "ingest": _step_ingest, "hourly": _step_hourly,
         "snapshot": _step_snapshot, "engine": _step_engine, "cluster": _step_cluster}


def _child(step, database_url, path, queue):
    try:
        seconds, count = STEPS[step](database_url, path)
        # VmHWM, unlike ru_maxrss, does not inherit the parent's size through fork + exec.
        queue.put((seconds, count, _vm_hwm_mb(os.getpid()), None))
    except Exception as exc:  # reported by the parent
        queue.put((None, None, None, f"{type(exc).__name__}: {exc}"))


def run_step(step, database_url, path):
    """Run one step in a fresh process; return (seconds, count, peak RSS MB).

    The step starts once the disk holds what earlier steps wrote (`os.sync`): the next
    hour's commit would otherwise wait for gigabytes of the whole set's write-back, which
    an hour apart, as the feed comes, is long done."""
    os.sync()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(step, database_url, str(path), queue))
    process.start()
    seconds, count, peak, error = queue.get()
    process.join()
    if error:
        raise RuntimeError(f"{step}: {error}")
    return seconds, count, peak


def run_pages(database_url):
    """`bench.pages` on the database, in a fresh process: its table, as text."""
    done = subprocess.run([sys.executable, "-m", "bench.pages", "--database-url", database_url,
                           "--repeat", "10"], capture_output=True, text=True,
                          timeout=END_TO_END_TIMEOUT_S)
    return done.stdout + (f"bench.pages failed: {done.stderr[-2000:]}" if done.returncode else "")


def run_end_to_end(database_url, log_dir, warm_up=False, **settings):
    """Start `run.py` on the database (with more `settings` in its environment), trigger a
    report, poll it every 20 ms on one connection until done; with `warm_up`, time a
    second report, not the first.

    Returns (seconds from trigger to CSV, peak RSS MB of the largest server process: the
    one that computed the report, as `run.py` serves from several).
    """
    server = Server(log_dir, DATABASE_URL=database_url, STORE_DATA="", **settings)
    try:
        server.start(timeout=120)
        with requests.Session() as http:
            for _ in range(2 if warm_up else 1):
                began = time.perf_counter()
                report_id = http.post(f"{server.url}/trigger_report",
                                      timeout=10).json()["report_id"]
                response = server.wait_for_report(report_id, END_TO_END_TIMEOUT_S, http=http,
                                                  pause=lambda: 0.02)
                seconds = time.perf_counter() - began
        if response.headers.get("X-Report-Status") != "Complete":
            raise RuntimeError(f"end-to-end report failed: {response.text[:200]}")
        pid = server.process.pid
        peaks = [_vm_hwm_mb(each) for each in [pid, *child_pids(pid)]]
        return seconds, max((mb for mb in peaks if not math.isnan(mb)), default=float("nan"))
    finally:
        server.stop(timeout=30)


def _vm_hwm_mb(pid):
    """Peak resident memory of a running process, from /proc (NaN once it has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def environment():
    return (f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
            f"pandas {pd.__version__}, numpy {np.__version__}")


def run_bench(stores, days, seed, repeat, cache_dir, database_url, echo, dask_workers=0,
              cold=False, hourly=0, servers=True, duckdb_reference=False, pages=False,
              keep=False):
    """Measure every step `repeat` times and echo a table of medians. The temporary folder
    of the SQLite files, columnar copies and server logs is deleted at the end, unless
    `keep`.

    "trigger -> CSV" is a report computed (REUSE_REPORTS=0); the row after it a second
    report on the same data: reused (warm), or computed again with `cold`.
    """
    if dask_workers and (database_url is None or not is_postgresql(database_url)):
        raise click.UsageError("--dask-workers needs a PostgreSQL --database-url")
    path = dataset_path(cache_dir, stores, days, seed)
    polls = _lines(path / "store_status.csv") - 1
    echo(f"data: {stores} stores x {days} days = {polls:,} polls ({path})")
    echo(environment())
    echo(f"before: {load()}")
    work = Path(tempfile.mkdtemp(prefix="store-monitor-bench-"))
    try:
        # The columnar copies and report tables of these databases, beside them (inherited by
        # every step's process and run.py), not in the checkout's instance folder.
        os.environ.setdefault("SNAPSHOT_COPY_DIR", str(work / "snapshot-copies"))
        fresh_database = _fresh_database_factory(database_url, work)
        second = "2nd trigger " + ("(computed)" if cold else "(reused)")
        rows = {name: ([], []) for name in ("ingest", "snapshot", "engine", "trigger -> CSV",
                                            second)}
        if hourly:
            hours = next_hour_paths(path, stores, seed, hourly)
            echo(f"then {hourly} hour(s) of {stores:,} polls each ({hours[0].parent})")
            rows = {"ingest": ([], []), "hourly ingest": ([], []),
                    "  of which live state": ([], []), "report after it": ([], []), **rows}
        if duckdb_reference:
            rows = {"DuckDB read_csv": ([], []), **rows}
        for attempt in range(repeat):
            url = fresh_database(attempt)
            if duckdb_reference:
                seconds, _, peak = run_step("duckdb", url, path)
                rows["DuckDB read_csv"][0].append(seconds)
                rows["DuckDB read_csv"][1].append(peak)
            for step in ("ingest", "snapshot", "engine"):
                seconds, _, peak = run_step(step, url, path)
                rows[step][0].append(seconds)
                rows[step][1].append(peak)
            if hourly:
                # Each hour's report reads the copy the ingest of that hour extended.
                times, _, peak = run_step("hourly", url, os.pathsep.join(map(str, hours)))
                for name, seconds in times.items():
                    rows[name][0].extend(seconds)
                    rows[name][1].append(peak)
            for name, settings in (("trigger -> CSV", {"REUSE_REPORTS": "0"}),
                                   (second, {"REUSE_REPORTS": "0" if cold else "1",
                                             "warm_up": True})) if servers else ():
                seconds, peak = run_end_to_end(url, work, **settings)
                rows[name][0].append(seconds)
                rows[name][1].append(peak)
            if dask_workers:
                for name, (seconds, peak) in _cluster_steps(url, path, work, dask_workers).items():
                    rows.setdefault(name, ([], []))
                    if seconds is not None:
                        rows[name][0].append(seconds)
                    rows[name][1].append(peak)
        echo(f"{'step':<24}{'median s':>10}{'min s':>9}{'max s':>9}{'peak RSS MB':>13}")
        for name, (times, peaks) in rows.items():
            if not peaks:
                continue
            timing = (f"{statistics.median(times):>10.2f}{min(times):>9.2f}{max(times):>9.2f}"
                      if times else f"{'-':>10}{'-':>9}{'-':>9}")
            echo(f"{name:<24}{timing}{max(peaks):>13.0f}")
        if duckdb_reference:
            ratio = statistics.median(rows["ingest"][0]) / statistics.median(
                rows["DuckDB read_csv"][0])
            echo(f"ingest / DuckDB's read of the same files: {ratio:.2f} x (medians)")
        echo(f"database after the last run: {database_size(url)}")
        if pages:
            # In a fresh process, as a server would meet the data after a restart.
            echo(run_pages(url))
        backend = "sqlite" if database_url is None else make_url(database_url).get_backend_name()
        echo(f"({repeat} run(s) on {backend}; each step in its own process; "
             "trigger -> CSV through run.py)")
        echo(f"after: {load()}")
    finally:
        if keep:
            echo(f"kept: {work}")
        else:  # databases, copies and logs: gigabytes at a million stores
            shutil.rmtree(work, ignore_errors=True)


def _lines(path, block=16 << 20):
    """Lines of a file, counted in blocks (a 13 GB file in seconds, not minutes)."""
    count = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(block):
            count += chunk.count(b"\n")
    return count


def database_size(database_url):
    """What the database holds on disk, in words: the SQLite file (and its write-ahead log)
    or PostgreSQL's database and polls table."""
    if make_url(database_url).get_backend_name() == "sqlite":
        path = Path(make_url(database_url).database)
        wal = Path(f"{path}-wal")
        return (f"SQLite file {path.stat().st_size / 1e6:,.0f} MB"
                + (f" + log {wal.stat().st_size / 1e6:,.0f} MB" if wal.exists() else ""))
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            whole, polls = conn.execute(sa.text(
                "SELECT pg_database_size(current_database()), "
                "pg_total_relation_size('store_status')")).one()
    finally:
        engine.dispose()
    return f"PostgreSQL database {whole / 1e6:,.0f} MB, of which polls {polls / 1e6:,.0f} MB"


def load():
    """The machine's load averages (1, 5, 15 min): figures taken on a busy machine say so."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _cluster_steps(database_url, path, work, workers):
    """The report on a fresh local cluster of `workers` one-thread processes: computed by a
    job alone, and through `run.py`; then the workers' peak memory.

    Returns {row name: (seconds, peak RSS MB)}.
    """
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0",
                                  env={"DATABASE_URL": database_url}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        # A new worker imports the app with its first task (seconds); a running cluster has
        # done that long before, so it is done here before anything is timed. So is the
        # service's own first import of Dask: the server's second report is the one timed.
        client.run(importlib.import_module, "app.cluster.compute")
        os.environ["DASK_SCHEDULER"] = cluster.scheduler_address  # for the spawned step
        try:
            job = run_step("cluster", database_url, path)
        finally:
            del os.environ["DASK_SCHEDULER"]
        # Computed, not reused: the warm-up report has the same data.
        served = run_end_to_end(database_url, work, warm_up=True, REUSE_REPORTS="0",
                                DASK_SCHEDULER=cluster.scheduler_address)
        peaks = client.run(lambda: _vm_hwm_mb(os.getpid()))
    return {f"Dask job ({workers} workers)": (job[0], job[2]),
            "trigger -> CSV, Dask": served,
            "Dask worker (largest)": (None, max(peaks.values()))}


def _fresh_database_factory(database_url, work):
    """A function giving an empty database for each attempt."""
    if database_url is None:
        return lambda attempt: f"sqlite:///{work / f'bench-{attempt}.sqlite3'}"

    def empty(attempt):
        # Every table goes, the migrations' version table too: the next app rebuilds them.
        engine = sa.create_engine(database_url)
        tables = sa.MetaData()
        tables.reflect(engine)
        tables.drop_all(engine)
        engine.dispose()
        return database_url

    return empty


@click.command()
@click.option("--stores", default=14_000, show_default=True)
@click.option("--days", default=8, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--repeat", default=3, show_default=True, help="Runs per step; medians shown.")
@click.option("--cache-dir", default="bench-cache", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where generated data sets are kept between runs.")
@click.option("--database-url", default=None,
              help="Measure on this database (emptied first!) instead of fresh SQLite files.")
@click.option("--dask-workers", default=0, show_default=True,
              help="Also compute the report on a local Dask cluster of this many one-thread "
                   "worker processes (PostgreSQL only; needs requirements-dask.txt).")
@click.option("--hourly", default=0, show_default=True,
              help="After the whole set, ingest this many next hours (one poll per store "
                   "each) and compute a report after each, timed in one process.")
@click.option("--duckdb", "duckdb_reference", is_flag=True,
              help="Also time DuckDB's in-memory read of the same CSV files (the reference "
                   "for ingest; needs the dev requirements) and print the ratio.")
@click.option("--no-server", is_flag=True,
              help="Leave out the reports through run.py (trigger -> CSV).")
@click.option("--pages", is_flag=True,
              help="Then time the dashboard's pages and the API's answers on the database "
                   "of the last run (bench.pages, in a fresh process).")
@click.option("--keep", is_flag=True,
              help="Keep the temporary folder of the databases, copies and server logs "
                   "(printed at the end) instead of deleting it.")
@click.option("--cold", is_flag=True,
              help="Compute the second report too (REUSE_REPORTS=0) instead of reusing the "
                   "first one's CSV.")
def main(stores, days, seed, repeat, cache_dir, database_url, dask_workers, cold, hourly,
         duckdb_reference, no_server, pages, keep):
    """Measure ingest, snapshot, engine and trigger -> CSV on generated data."""
    run_bench(stores, days, seed, repeat, cache_dir, database_url, click.echo, dask_workers,
              cold, hourly, not no_server, duckdb_reference, pages, keep)


if __name__ == "__main__":
    main()
