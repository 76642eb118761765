"""Liveness and readiness probes."""

import sqlalchemy as sa

from app.extensions import db


def test_healthz_and_its_alias_answer_without_the_database(client):
    for path in ("/healthz", "/health"):
        response = client.get(path)
        assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_ready_once_the_report_runner_runs(app, client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "checks": {
        "database": "ok", "report_runner": "report runner not started"}}

    app.extensions["report_runner"].wake()  # what a serving process does at start
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {
        "database": "ok", "report_runner": "ok"}}


def test_not_ready_while_the_schema_lags_behind_the_code(app, client):
    app.extensions["report_runner"].wake()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '63c117ff542e'"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == \
        "schema not at the latest migration (run flask db upgrade)"
