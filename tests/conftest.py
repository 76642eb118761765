import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from servers import PROJECT_DIR, RUN_PY, Server, poll_until_done
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from app.storage import database

# Golden cases and the real 2023 sample files travel with the repository.
GOLDEN_DIR = PROJECT_DIR / "tests" / "golden"
LOOP_DATA_DIR = PROJECT_DIR / "tests" / "data" / "loop-2023"
# A shared folder beside the repository (as in CI) may hold golden cases added after the
# copy in tests/golden; only its golden/ folder is read, by test_golden.py. It is optional.
SHARED_GOLDEN_DIR = Path(
    os.environ.get("STORE_MONITOR_SHARED", PROJECT_DIR.parent / "shared")) / "golden"
BUNDLED_DATA = PROJECT_DIR / "data" / "store-monitoring-data.zip"


# Which database the suite runs on: "sqlite" (the default), or a PostgreSQL URL such as
# postgresql+psycopg://postgres@127.0.0.1:5432/test. With a URL, every test gets a schema of
# its own, and an unreachable server fails the tests: nothing is skipped.
TEST_DATABASE = os.environ.get("STORE_MONITOR_TEST_DATABASE", "sqlite")


@pytest.fixture
def database_url(tmp_path):
    """An empty database for one test: a SQLite file, or a fresh PostgreSQL schema.

    (An in-memory SQLite database would not suit the worker threads.)
    """
    if TEST_DATABASE == "sqlite":
        yield f"sqlite:///{tmp_path / 'store-monitor.sqlite3'}"
        return
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(TEST_DATABASE)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(TEST_DATABASE).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        try:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        finally:
            admin.dispose()  # also when the drop fails, so no connection leaks into later tests


@pytest.fixture(scope="session")
def big_store_data(tmp_path_factory):
    """14,000 stores x 8 days, about 2.5 million polls: a report on it takes seconds.

    Generated once per session, in a folder the servers under test load as STORE_DATA.
    """
    from bench.generate import generate_dataset, write_dataset

    folder = tmp_path_factory.mktemp("big-store-data")
    write_dataset(generate_dataset(14_000, 8, seed=3), folder)
    return folder


@pytest.fixture
def db_proxy(database_url):
    """A `TcpProxy` in front of the PostgreSQL server, and `database_url` through it.

    SQLite is a file, with no connection to break: there the tests that need this skip, and
    the PostgreSQL run of the suite (which CI does) runs them.
    """
    if TEST_DATABASE == "sqlite":
        pytest.skip("needs PostgreSQL: a SQLite file has no network connection to break")
    from tcpproxy import TcpProxy

    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield proxy, proxied
    proxy.close()


# Every test app's settings, under each test's own: no data loaded at start, a quick heartbeat,
# and columnar copies of the data in the session's temporary folder (set below), not in the
# instance folder. Copies are kept per database URL, and every test has a database of its own.
TEST_SETTINGS = {"TESTING": True, "STORE_DATA": "", "HEARTBEAT_SECONDS": 0.2}


@pytest.fixture(scope="session", autouse=True)
def _snapshot_copies_in_temporary_folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("snapshot-copies"))
    TEST_SETTINGS["SNAPSHOT_COPY_DIR"] = folder
    # Commands the tests start (flask, bench) read it from their environment.
    before = os.environ.get("SNAPSHOT_COPY_DIR")
    os.environ["SNAPSHOT_COPY_DIR"] = folder
    yield
    if before is None:
        os.environ.pop("SNAPSHOT_COPY_DIR", None)
    else:
        os.environ["SNAPSHOT_COPY_DIR"] = before


def make_app(database_url, upgrade=True, **settings):
    """An app on `database_url` with `TEST_SETTINGS` and then `settings`; its schema upgraded
    first, as the serving start-up does (create_app leaves the schema alone)."""
    app = create_app({**TEST_SETTINGS, "SQLALCHEMY_DATABASE_URI": database_url, **settings})
    if upgrade:
        database.upgrade(app)
    return app


def close_app(app):
    """Stop the app's report threads and close its connections."""
    app.extensions["report_runner"].shutdown()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(database_url, tmp_path):
    # Copies in a folder of the test's own, which test_snapshot_copy lists and removes.
    app = make_app(database_url, REPORT_WORKERS=2,
                   SNAPSHOT_COPY_DIR=str(tmp_path / "snapshot-copies"))
    yield app
    close_app(app)


@pytest.fixture
def app_factory(database_url):
    """Make apps on the test's database with settings of the test's choosing."""
    made = []

    def make(**settings):
        made.append(make_app(database_url, **settings))
        return made[-1]

    yield make
    for app in made:
        close_app(app)


@pytest.fixture
def server_factory(tmp_path, database_url):
    """Make `servers.Server`s, stopped when the test ends.

    Asking for `database_url` (unused here) makes its fixture start first and end last:
    servers stop before the test's schema is dropped, which their open connections would
    otherwise race (a deadlock on PostgreSQL).
    """
    servers = []

    def make(command=RUN_PY, **env):
        # Columnar copies in the test's folder too, not in the repository's instance folder.
        env.setdefault("SNAPSHOT_COPY_DIR", str(tmp_path / "snapshot-copies"))
        server = Server(tmp_path, command, **env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def write_csv(folder, name, text):
    """Write `text` (leading indentation removed) as a CSV file and return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [line.strip() for line in text.strip().splitlines()]
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder


class Reports:
    """Trigger reports and wait for them through the test client."""

    def __init__(self, client):
        self.client = client

    def trigger(self):
        response = self.client.post("/trigger_report")
        assert response.status_code == 202
        return response.get_json()["report_id"]

    def wait(self, report_id, timeout=30, **kwargs):
        return poll_until_done(
            lambda: self.client.get(f"/get_report?report_id={report_id}", **kwargs), timeout)


@pytest.fixture
def reports(client):
    return Reports(client)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Playwright) for the browser tests of one module; without one,
    those tests fail under CI (CI=true) and are skipped elsewhere. Per module, not per
    session: Playwright's sync API keeps an event loop running while it is open, and other
    tests run asyncio loops of their own (bench.load's clients)."""
    from browsers import CHROMIUM_ARGS, chromium_path
    from playwright import sync_api as playwright_api

    path = chromium_path()
    if path is None:
        message = ("no Chromium found: install it (Debian/Ubuntu: apt-get install chromium) "
                   "or set CHROMIUM to its path")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
