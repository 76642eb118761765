import os
import time
from pathlib import Path

import pytest

from app import create_app

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The shared folder (SPEC, golden cases, real data) lies beside the repository.
SHARED_DIR = Path(os.environ.get("STORE_MONITOR_SHARED", PROJECT_DIR.parent / "shared"))
GOLDEN_DIR = SHARED_DIR / "golden"
LOOP_DATA_DIR = SHARED_DIR / "data" / "loop-2023"
BUNDLED_DATA = PROJECT_DIR / "data" / "store-monitoring-data.zip"


@pytest.fixture
def database_url(tmp_path):
    """A fresh SQLite file per test (an in-memory database does not suit worker threads)."""
    return f"sqlite:///{tmp_path / 'store-monitor.sqlite3'}"


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "STORE_DATA": "",
        "REPORT_WORKERS": 2,
        "HEARTBEAT_SECONDS": 0.2,
    })
    yield app
    app.extensions["report_runner"].shutdown()
    with app.app_context():
        from app.extensions import db
        db.engine.dispose()


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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.client.get(f"/get_report?report_id={report_id}", **kwargs)
            if response.headers.get("X-Report-Status") != "Running":
                return response
            time.sleep(0.05)
        raise AssertionError(f"report {report_id} still Running after {timeout} s")


@pytest.fixture
def reports(client):
    return Reports(client)
