"""A Complete report's table kept as a file (app.reports.table_files): written by the process
that completed the report, read by every view, and never needed for a right answer."""

import time

import pytest
from conftest import GOLDEN_DIR

from app.ingest.load import ingest
from app.reports import state, table_files
from app.reports.table import TABLES
from app.storage import columnar

CASE = GOLDEN_DIR / "a_spec_example"


def _tables_folder(app):
    with app.app_context():
        return columnar.database_folder("report-tables")


def _answers(client, report_id):
    """What the dashboard's API says of a report: its summary and a sorted page of rows."""
    summary = client.get(f"/api/v1/reports/{report_id}").get_json()
    rows = client.get(f"/api/v1/reports/{report_id}/rows?sort=downtime_last_week&order=desc"
                      ).get_json()
    return ({k: summary[k] for k in ("figures", "histogram", "top_downtime")}, rows["rows"])


def _written(app, report_id):
    """The table file of a report, once the thread that completed it has written it (just
    after the report shows Complete)."""
    path = _tables_folder(app) / f"{report_id}.arrow"
    deadline = time.monotonic() + 10
    while not path.is_file():
        assert time.monotonic() < deadline, f"no table file for {report_id}"
        time.sleep(0.01)
    return path


def _forget():
    """As a process that never saw the report: nothing kept in memory."""
    TABLES._tables.clear()


@pytest.fixture
def report_id(app, reports):
    with app.app_context():
        ingest(CASE)
    found = reports.trigger()
    reports.wait(found)
    return found


def test_a_completed_report_is_read_from_its_file_without_its_csv(app, client, report_id,
                                                                  monkeypatch):
    _written(app, report_id)
    _forget()
    from_csv = _answers(client, report_id)  # the table parsed from the CSV, as a check
    _forget()

    def no_csv(_report_id):
        raise AssertionError("the CSV was read")

    monkeypatch.setattr(state, "csv_text", no_csv)
    assert _answers(client, report_id) == from_csv
    # The rows are those of the case's expected CSV, most downtime last week first.
    expected = [line.split(",") for line in (CASE / "expected.csv").read_text().split()[1:]]
    assert [[row["store_id"], row["uptime_last_week"], row["downtime_last_week"]]
            for row in from_csv[1]] == [[cells[0], float(cells[3]), float(cells[6])]
                                        for cells in expected]


def test_a_damaged_or_missing_file_is_built_again_from_the_csv(app, client, report_id):
    path = _written(app, report_id)
    _forget()
    expected = _answers(client, report_id)
    for damage in (lambda: path.write_bytes(b"not an arrow file"), path.unlink):
        damage()
        _forget()
        assert _answers(client, report_id) == expected
        assert path.is_file() and path.read_bytes()[:6] == b"ARROW1"


def test_only_the_newest_files_are_kept(app, reports, report_id, monkeypatch):
    monkeypatch.setattr(table_files, "KEPT_FILES", 2)
    newer = []
    _written(app, report_id)
    for _ in range(3):  # each reuses the first one's CSV, and gets a file of its own
        time.sleep(0.05)  # files a clock tick apart: kept by age
        newer.append(reports.trigger())
        reports.wait(newer[-1])
        _written(app, newer[-1])
    assert sorted(p.stem for p in _tables_folder(app).glob("*.arrow")) == sorted(newer[-2:])


def test_no_file_is_named_by_an_unsafe_id(tmp_path):
    assert table_files._path(tmp_path, "../outside") is None
    assert table_files._path(None, "abc") is None
    assert table_files._path(tmp_path, "abc-123") == tmp_path / "abc-123.arrow"


def test_a_report_without_rows_is_read_from_its_file(app, client, reports):
    report_id = reports.trigger()  # nothing loaded: a report of no store
    reports.wait(report_id)
    _written(app, report_id)
    _forget()
    summary, rows = _answers(client, report_id)
    assert summary["figures"]["stores"] == 0 and summary["top_downtime"] == [] and rows == []


def test_an_expired_report_loses_its_table_file(app, client, report_id):
    from app.reports import retention

    path = _written(app, report_id)
    app.config["REPORT_RETENTION"] = "0"  # keep none
    with app.app_context():
        assert retention.expire_reports() == 1
    assert not path.exists()
    _forget()
    assert client.get(f"/get_report?report_id={report_id}").status_code == 410
