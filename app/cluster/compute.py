"""Reports computed on a Dask cluster (`DASK_SCHEDULER`): one task per range of stores.

Once the report's `now` is fixed, a store's report depends on nothing but its own polls,
hours and zone (its business time is laid out from its own first observation), so a report
splits by store. The job:

1. exports one PostgreSQL view of the data and reads, in it, each store's poll count and
   latest poll: `now` is the latest of all (one query);
2. cuts the stores into ranges of at most `max_polls` polls (`store_ranges`) and submits one
   task per range; a task joins the exported view, reads only its stores through ADBC, runs
   the engine with the job's `now` and returns its rows;
3. gathers the rows as tasks finish (progress is the share of finished tasks), and the
   caller formats them into the CSV a single process would write.

Workers need this package, the Dask requirements and `DATABASE_URL` naming the service's
database; the scheduler needs only the Dask requirements. Dask itself is imported only
here, and only when a report runs on a cluster.
"""

import asyncio
import logging
import operator
import os
import pkgutil
import threading
import time
import uuid
from dataclasses import dataclass, replace

import pandas as pd

from app.cluster.shared_view import SharedView, connect_postgresql, read_store_range
from app.cluster.store_ranges import store_ranges
from app.config import database_url_from_environment
from app.engine import COLUMNS, build_report
from app.storage.database import is_postgresql

log = logging.getLogger(__name__)

# Progress (a fraction) once the ranges are planned; finished tasks fill the rest up to
# DONE_PROGRESS, and the CSV the last part.
PLANNED_PROGRESS = 0.1
DONE_PROGRESS = 0.9
# On a worker: each thread's database connection, reused by its next tasks.
_worker = threading.local()


class ClusterError(Exception):
    """A report could not be computed on the cluster; the message says why, in one line,
    for clients too (addresses and exception texts go to the log only)."""


@dataclass(frozen=True)
class Settings:
    """Where the cluster is and how the work is cut (the `DASK_*` settings)."""

    scheduler: str
    max_polls: int
    connect_timeout_s: float
    report_timeout_s: float

    @classmethod
    def from_config(cls, config):
        return cls(scheduler=config["DASK_SCHEDULER"],
                   max_polls=config["DASK_MAX_POLLS_PER_TASK"],
                   connect_timeout_s=config["DASK_CONNECT_TIMEOUT_SECONDS"],
                   report_timeout_s=config["DASK_REPORT_TIMEOUT_SECONDS"])


@dataclass(frozen=True)
class RangeReport:
    """What a task returns: its stores' rows (engine columns), warnings, and which process
    computed them."""

    frame: pd.DataFrame
    warnings: pd.DataFrame
    pid: int
    polls: int
    read_s: float  # reading the range from the database
    engine_s: float  # the engine on it


@dataclass(frozen=True)
class ClusterReport:
    """The gathered report: rows of every store (unsorted), warnings, `now`, how many tasks
    it took and which worker processes ran them."""

    frame: pd.DataFrame
    warnings: pd.DataFrame
    now_us: int | None
    tasks: int
    worker_pids: frozenset
    plan_s: float  # exporting the view and counting polls per store
    parts: tuple  # the `RangeReport`s without their rows, for timings


def compute_on_cluster(database_url, settings, progress=None):
    """Compute a report's rows on the Dask cluster at `settings.scheduler`.

    Raises `ClusterError` when the scheduler does not answer within the connect timeout,
    when the database is not PostgreSQL, or when a task fails for good (Dask has already
    retried tasks whose worker died).
    """
    progress = progress or (lambda fraction: None)
    if not is_postgresql(database_url):
        raise ClusterError("reports on a Dask cluster need a PostgreSQL DATABASE_URL")
    distributed = _import_distributed()
    # The client runs on an event loop of this job's own, so that every wait on the
    # cluster can be given a deadline (see `_connect`).
    return asyncio.run(_compute(distributed, database_url, settings, progress))


async def _compute(distributed, database_url, settings, progress):
    client = await _connect(distributed, settings)
    try:
        began = time.perf_counter()
        # Blocking database work runs in a thread, so the client keeps talking meanwhile.
        view = await asyncio.to_thread(SharedView, database_url)
        plan_s = time.perf_counter() - began
        try:
            per_store = view.polls_per_store
            now_us = int(per_store["latest_us"].max()) if len(per_store) else None
            ranges = store_ranges(per_store["polls"].to_numpy(), settings.max_polls)
            pks = per_store["store_pk"].to_numpy()
            polls = per_store["polls"].to_numpy()
            # The scheduler unpickles the task graph but need not have this package: the
            # graph names only the standard library (`pkgutil.resolve_name`, `operator.call`) and
            # the task function is looked up by name on a worker, once per job.
            task = client.submit(pkgutil.resolve_name, TASK_FUNCTION, key=f"locate-{uuid.uuid4()}")
            futures = [client.submit(operator.call, task, int(pks[first]), int(pks[last - 1]),
                                     int(polls[first:last].sum()), now_us, view.id,
                                     key=f"report_range-{uuid.uuid4()}")
                       for first, last in ranges]
            log.info("report on %s: %d stores, %d polls in %d tasks of at most %d polls (or "
                     "one store)", settings.scheduler, len(pks), polls.sum(), len(ranges),
                     settings.max_polls)
            progress(PLANNED_PROGRESS)
            parts = await _gather(distributed, client, futures, settings.report_timeout_s,
                                  progress)
        finally:
            view.close()
    finally:
        await client.close()
    frames = [part.frame for part in parts]
    return ClusterReport(
        frame=pd.concat(frames, ignore_index=True) if frames
        else pd.DataFrame(columns=["store_id", *COLUMNS]),
        warnings=pd.concat([part.warnings for part in parts], ignore_index=True) if parts
        else pd.DataFrame(columns=["store_id", "message"]),
        now_us=now_us, tasks=len(ranges), worker_pids=frozenset(p.pid for p in parts),
        plan_s=plan_s, parts=tuple(replace(p, frame=None, warnings=None) for p in parts))


TASK_FUNCTION = f"{__name__}:report_range"


def report_range(first_pk, last_pk, polls, now_us, view_id):
    """A task: the report rows of the stores with `store.id` in ``[first_pk, last_pk]``.

    Runs on a worker, which reads its own `DATABASE_URL`. `polls` is how many polls the job
    counted for these stores in the view `view_id`; reading another number means the
    worker reads another database, and the task fails rather than return wrong rows.
    """
    url = database_url_from_environment()
    if not url:
        raise ClusterError("DATABASE_URL is not set on the Dask worker")
    began = time.perf_counter()
    try:
        snapshot = read_store_range(_worker_connection(url), first_pk, last_pk, view_id)
    except Exception:
        _drop_worker_connection()  # it may be broken; the next task connects again
        raise
    read_s = time.perf_counter() - began
    if len(snapshot.polls) != polls:
        raise ClusterError(f"stores {first_pk}..{last_pk}: the worker read "
                           f"{len(snapshot.polls)} polls where the job counted {polls}; "
                           "does its DATABASE_URL name the service's database?")
    result = build_report(snapshot.polls, snapshot.hours, snapshot.zones, now_us=now_us)
    frame = result.frame.assign(store_id=result.frame["store_id"].astype(object))
    return RangeReport(frame, result.warnings, os.getpid(), polls, read_s,
                       time.perf_counter() - began - read_s)


def _worker_connection(url):
    """This worker thread's ADBC connection, kept between tasks: connecting costs more
    (0.2 s here) than reading a small range."""
    cached = getattr(_worker, "connection", None)
    if cached is not None and cached[0] != url:
        _drop_worker_connection()
        cached = None
    if cached is None:
        cached = _worker.connection = (url, connect_postgresql(url))
    return cached[1]


def _drop_worker_connection():
    cached = getattr(_worker, "connection", None)
    _worker.connection = None
    if cached is not None:
        try:
            cached[1].close()
        except Exception:  # closing a broken connection may fail; it is gone either way
            log.debug("closing a worker's database connection failed", exc_info=True)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError("DASK_SCHEDULER is set but Dask is not installed "
                           "(pip install -r requirements-dask.txt)") from exc
    return distributed


async def _connect(distributed, settings):
    """A client of the scheduler, or `ClusterError` once the connect timeout has passed.

    The client's own timeout covers opening the connection, but not the scheduler's answer
    to the first message: a peer that accepts connections and never answers (a hung
    scheduler, a half-open proxy) would hold a synchronous `Client()` forever. Awaiting an
    asynchronous client under `wait_for` cancels the attempt at the deadline.
    """
    client = distributed.Client(settings.scheduler, asynchronous=True,
                                timeout=settings.connect_timeout_s, set_as_default=False)
    try:
        await asyncio.wait_for(client, settings.connect_timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        log.warning("Dask scheduler %s did not answer: %r", settings.scheduler, exc)
        await client.close()
        raise ClusterError(f"the Dask scheduler (DASK_SCHEDULER) did not answer within "
                           f"{settings.connect_timeout_s:g} s") from exc
    return client


async def _gather(distributed, client, futures, timeout_s, progress):
    """Each task's result as it finishes; `ClusterError` on the first that failed for good,
    or when not all have finished after `timeout_s`."""
    parts = []
    try:
        async with asyncio.timeout(timeout_s):
            async for future in distributed.as_completed(futures, loop=client.loop):
                try:
                    parts.append(await future)
                except ClusterError:
                    raise
                except Exception as exc:  # any task error, KilledWorker, a lost scheduler...
                    log.warning("Dask task %s failed: %r", future.key, exc)
                    raise ClusterError(f"a report task failed on the cluster "
                                       f"({type(exc).__name__}; details in the log)") from exc
                progress(PLANNED_PROGRESS + (DONE_PROGRESS - PLANNED_PROGRESS)
                         * len(parts) / len(futures))
    except TimeoutError as exc:
        raise ClusterError(f"the cluster had finished {len(parts)} of {len(futures)} "
                           f"report tasks after {timeout_s:g} s") from exc
    return parts
