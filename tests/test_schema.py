"""The schema changes only when asked: `database.upgrade`, called by the serving start-ups
and the CLI commands that use tables, never by `create_app` or `flask db ...`."""

import contextlib
import os
import subprocess
import sys

import flask_migrate
import pytest
import sqlalchemy as sa
from conftest import GOLDEN_DIR, PROJECT_DIR, TEST_DATABASE, make_app
from servers import gunicorn

from app.extensions import db
from app.ingest.load import ingest
from app.storage import database

# Two revisions in a row of migrations/versions, before the latest: API keys, then the
# report's data version.
EARLIER, LATER = "7c1e5a9d2b40", "b3e91f04c2d7"


def revision(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()


def table_names(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def flask(*args, database_url):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": database_url, "STORE_DATA": ""})


@contextlib.contextmanager
def migrated_to(database_url, revision):
    """An app context on `database_url` brought to `revision` of the migrations; yields
    their folder, for the test's own upgrades and downgrades. Its engines are disposed
    after."""
    app = make_app(database_url, upgrade=False)
    directory = str(database.MIGRATIONS_DIR)
    try:
        with app.app_context():
            flask_migrate.upgrade(directory=directory, revision=revision)
            yield directory
    finally:
        with app.app_context():
            db.engine.dispose()
            database.queue_engine().dispose()


def test_creating_an_app_leaves_the_schema_alone(database_url):
    app = make_app(database_url, upgrade=False)
    try:
        assert table_names(database_url) == set()
        database.upgrade(app)
        assert {"report", "store_status", "alembic_version"} <= table_names(database_url)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_downgrade_goes_down_from_where_the_database_is(database_url):
    app = make_app(database_url, upgrade=False)
    with app.app_context():
        flask_migrate.upgrade(directory=str(database.MIGRATIONS_DIR), revision=LATER)
        db.engine.dispose()
    # Had the command upgraded first, it would step down from the newest revision instead.
    done = flask("db", "downgrade", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert revision(database_url) == EARLIER


def test_a_command_that_uses_tables_upgrades_first(database_url):
    done = flask("keys", "list", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert "no keys" in done.stdout
    assert "report" in table_names(database_url)


@pytest.mark.e2e
@pytest.mark.skipif(TEST_DATABASE != "sqlite", reason="a queue file of its own is SQLite's")
def test_gunicorn_workers_start_together_on_two_fresh_sqlite_files(server_factory, tmp_path):
    # Workers that each upgraded raced on the queue's file ("table api_key already exists");
    # gunicorn's master now upgrades both files once, before it starts them.
    data, queue = tmp_path / "data.sqlite3", tmp_path / "queue.sqlite3"
    server = server_factory(gunicorn(4), DATABASE_URL=f"sqlite:///{data}",
                            QUEUE_DATABASE_URL=f"sqlite:///{queue}", STORE_DATA="",
                            LOG_TO_STDOUT="1").start(timeout=120)
    assert server.process.poll() is None
    assert "already exists" not in server.log() and "Traceback" not in server.log()
    for path in (data, queue):
        assert "report" in table_names(f"sqlite:///{path}")


def test_job_states_migration_names_queued_and_running_and_goes_back(database_url):
    app = make_app(database_url, upgrade=False)
    seed_states = "b3e7a91c4d20"  # the last revision with the seed's three states
    migrations = str(database.MIGRATIONS_DIR)
    engine = sa.create_engine(database_url)
    rows = {"q": ("Running", None), "r": ("Running", "host:1:ab"), "c": ("Complete", "host:1:ab"),
            "e": ("Error", "host:1:ab")}

    def statuses():
        with engine.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT id, status FROM report").all())

    try:
        with app.app_context():
            flask_migrate.upgrade(directory=migrations, revision=seed_states)
            with engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO report (id, status, worker, created_at, heartbeat_at, progress)"
                    " VALUES (:id, :status, :worker, '2026-01-01', '2026-01-01', 0)"),
                    [{"id": key, "status": status, "worker": worker}
                     for key, (status, worker) in rows.items()])
            flask_migrate.upgrade(directory=migrations)
            assert statuses() == {"q": "queued", "r": "running", "c": "complete", "e": "error"}
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.exec_driver_sql("UPDATE report SET status = 'Running' WHERE id = 'q'")
            flask_migrate.downgrade(directory=migrations, revision=seed_states)
            assert statuses() == {key: status for key, (status, _worker) in rows.items()}
            db.engine.dispose()
    finally:
        engine.dispose()


def test_the_models_match_the_migrations(app):
    # What `flask db check` asks: autogenerate finds nothing to change on a migrated database.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, list(db.metadatas.values())) == []


def test_the_first_ingest_leaves_the_schema_the_migrations_made(app):
    # On PostgreSQL the first ingest loads the polls into a new table and puts it in the
    # place of the empty one: same columns, same key, same names. A second ingest upserts
    # on that key.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with app.app_context():
        ingest(GOLDEN_DIR / "a_spec_example")
        ingest(GOLDEN_DIR / "a_spec_example")
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, list(db.metadatas.values())) == []
            key = sa.inspect(conn).get_pk_constraint("store_status")
            polls = conn.execute(sa.text("SELECT count(*) FROM store_status")).scalar()
    assert key["constrained_columns"] == ["hour", "store_pk", "timestamp_us"]
    if TEST_DATABASE != "sqlite":
        assert key["name"] == "store_status_pkey"
    assert polls == len((GOLDEN_DIR / "a_spec_example" / "store_status.csv")
                        .read_text().strip().splitlines()) - 1


def test_the_polls_keep_every_row_when_their_key_gains_the_hour(database_url):
    # Revision f3a9c0d1e2b4 rebuilds store_status keyed by (hour, store, instant); its
    # downgrade rebuilds the old layout. Hours worked out here: floor(µs / 3,600,000,000),
    # before 1970 too.
    before, keyed = "e7a2c41d9b30", "f3a9c0d1e2b4"
    polls = [(1, 1_674_662_400_000_000, True), (1, 1_674_666_000_000_001, False),
             (2, 1_674_662_399_999_999, True), (2, -1, False), (3, -3_600_000_000, True)]
    hours = [465_184, 465_185, 465_183, -1, -1]
    with migrated_to(database_url, before) as directory:
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO store_status (store_pk, timestamp_us, active) "
                                 "VALUES (:p, :t, :a)"),
                         [{"p": p, "t": t, "a": a} for p, t, a in polls])
        flask_migrate.upgrade(directory=directory, revision=keyed)
        with db.engine.connect() as conn:
            got = conn.execute(sa.text("SELECT hour, store_pk, timestamp_us, active "
                                       "FROM store_status")).all()
        assert sorted((h, p, t, bool(a)) for h, p, t, a in got) == \
            sorted((h, p, t, a) for h, (p, t, a) in zip(hours, polls))
        flask_migrate.downgrade(directory=directory, revision=before)
        with db.engine.connect() as conn:
            got = conn.execute(sa.text("SELECT store_pk, timestamp_us, active "
                                       "FROM store_status")).all()
        assert sorted((p, t, bool(a)) for p, t, a in got) == sorted(polls)


def test_the_report_csv_moves_to_its_own_table_and_back(database_url):
    # Revision 8b2d4f6a1c93 moves report.csv into report_csv; an expired report (no CSV)
    # gets no row there. Its downgrade puts the CSVs back.
    before, moved = "7a3f9d2e6b15", "8b2d4f6a1c93"
    reports = [("r-complete", "complete", "store_id\n1,0.00\n"), ("r-expired", "complete", None),
               ("r-running", "running", None)]
    with migrated_to(database_url, before) as directory:
        queue = database.queue_engine()
        with queue.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO report (id, status, created_at, heartbeat_at, progress, csv) "
                "VALUES (:id, :status, '2026-12-07 12:00:00', '2026-12-07 12:00:00', 0, "
                ":csv)"), [{"id": i, "status": s, "csv": c} for i, s, c in reports])
        flask_migrate.upgrade(directory=directory, revision=moved)
        with queue.connect() as conn:
            assert conn.execute(sa.text("SELECT report_id, csv FROM report_csv")).all() \
                == [("r-complete", "store_id\n1,0.00\n")]
            assert "csv" not in {c["name"] for c in sa.inspect(conn).get_columns("report")}
        flask_migrate.downgrade(directory=directory, revision=before)
        with queue.connect() as conn:
            assert sorted(conn.execute(sa.text("SELECT id, status, csv FROM report")).all()
                          ) == sorted(reports)
            assert "report_csv" not in sa.inspect(conn).get_table_names()


def test_live_rows_gain_their_store_ids_and_keep_their_state_both_ways(database_url):
    # Revision a4c8e1f6b293 copies each live row's store id from the store table and
    # indexes it after the state; a down store's row that lags behind its polls is brought
    # up to its latest poll (an up store's may go on lagging). Its downgrade drops the
    # column and keeps the rows. Now is 10:00 on 1 January 2024 (UTC).
    before, after = "e8b4d2a6f317", "a4c8e1f6b293"
    hour = 3_600_000_000
    now = 1_704_103_200_000_000
    stores = [(1, "zulu"), (2, "alpha"), (3, "mike")]
    # zulu: down, its row at 08:00 but polled at 09:30 too; alpha: up, lagging likewise;
    # mike: down, its row at its latest poll. Each row's latest observation in business
    # time (counted_us) is its latest poll (open 24x7).
    live = [(1, "down", now - 5 * hour, now - 2 * hour, 0),
            (2, "up", now - 5 * hour, now - 2 * hour, 0),
            (3, "down", now - 4 * hour, now, 0)]
    polls = [(1, now - 2 * hour), (1, now - hour // 2), (2, now - 2 * hour),
             (2, now - hour), (3, now)]
    with migrated_to(database_url, before) as directory:
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO store (id, store_id) VALUES (:i, :s)"),
                         [{"i": i, "s": s} for i, s in stores])
            conn.execute(sa.text("INSERT INTO live_store (store_pk, state, since_us, "
                                 "latest_us, counted_us, counted_active, next_us) "
                                 "VALUES (:p, :st, :a, :b, :b, :up, :n)"),
                         [{"p": p, "st": st, "a": a, "b": b, "up": st == "up", "n": n}
                          for p, st, a, b, n in live])
            conn.execute(sa.text("INSERT INTO store_status (hour, store_pk, timestamp_us, "
                                 "active) VALUES (:h, :p, :t, :a)"),
                         [{"h": t // hour, "p": p, "t": t, "a": False} for p, t in polls])
            conn.execute(sa.text("INSERT INTO live_meta (id, now_us) VALUES (1, :now)"),
                         {"now": now})
        flask_migrate.upgrade(directory=directory, revision=after)
        with db.engine.connect() as conn:
            down = conn.execute(sa.text(
                "SELECT store_id, store_pk FROM live_store WHERE state = 'down' "
                "ORDER BY store_id")).all()
            latest = {s: (a, b) for s, a, b in conn.execute(sa.text(
                "SELECT store_id, latest_us, counted_us FROM live_store"))}
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("live_store")}
        assert [tuple(row) for row in down] == [("mike", 3), ("zulu", 1)]
        assert latest == {"zulu": (now - hour // 2,) * 2, "alpha": (now - 2 * hour,) * 2,
                          "mike": (now, now)}
        assert "ix_live_store_state_store_id" in indexes
        assert "ix_live_store_state" not in indexes
        flask_migrate.downgrade(directory=directory, revision=before)
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT store_pk, state, since_us, latest_us, "
                                        "next_us FROM live_store")).all()
        assert sorted(tuple(row) for row in rows) == [
            (1, "down", now - 5 * hour, now - hour // 2, 0), *live[1:]]
