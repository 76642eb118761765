"""What clients may see: no internals in error answers, no formulas in the CSV."""

import csv
import io
import logging
import re
import threading

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from conftest import write_csv

from app.extensions import db
from app.ingest.load import ingest
from app.reports import pipeline
from app.reports import queue as report_queue
from app.reports.export import report_csv, store_ids_from_csv

ZERO_COLUMNS = {f"{kind}_last_{window}_s": 0.0 for kind in ("uptime", "downtime")
                for window in ("hour", "day", "week")}
ZEROS = ",0.00,0.00,0.00,0.00,0.00,0.00"


def test_formula_cells_are_neutralised_in_the_csv():
    # OWASP: a cell starting with = + - @ tab or CR (or ', to stay reversible) gets a
    # leading ' and is quoted; other cells are quoted only when they hold a comma, quote or
    # newline.
    ids = ["=1+2", "+cmd", "-5", "@SUM(A1)", "\tx", "\rx", "a,b", 'say "hi"', "plain", "a=b",
           "'quoted"]
    text = report_csv(pd.DataFrame({"store_id": ids, **ZERO_COLUMNS}))
    # Rows come sorted by the raw store id as text (code points: \t \r ' + - = @ a p s).
    assert text.split("\n")[1:] == [
        "\"'\tx\"" + ZEROS, "\"'\rx\"" + ZEROS, "\"''quoted\"" + ZEROS, "\"'+cmd\"" + ZEROS,
        "\"'-5\"" + ZEROS,
        "\"'=1+2\"" + ZEROS, "\"'@SUM(A1)\"" + ZEROS, '"a,b"' + ZEROS, "a=b" + ZEROS,
        "plain" + ZEROS, '"say ""hi"""' + ZEROS, ""]
    # A CSV reader gets back the neutralised text, so a spreadsheet shows it as text.
    read = [row[0] for row in csv.reader(io.StringIO(text, newline=""))][1:]
    assert read == ["'\tx", "'\rx", "''quoted", "'+cmd", "'-5", "'=1+2", "'@SUM(A1)", "a,b",
                    "a=b", "plain", 'say "hi"']
    # Removing one leading quote gives every id back exactly (the JSON rows do so).
    assert store_ids_from_csv(pa.array(read)).to_pylist() == sorted(ids)


def test_hostile_store_ids_reach_the_download_neutralised(app, reports, tmp_path):
    folder = write_csv(tmp_path, "store_status.csv", """
        store_id,timestamp_utc,status
        "=HYPERLINK(""http://x"")",2023-01-25 18:00:00 UTC,active
        -3,2023-01-25 18:00:00 UTC,active
        7,2023-01-25 18:00:00 UTC,active
    """)
    with app.app_context():
        ingest(folder)
        stored = db.session.execute(sa.text("SELECT store_id FROM store")).scalars().all()
    assert sorted(stored) == ["-3", "7", '=HYPERLINK("http://x")']  # kept exact
    report_id = reports.trigger()
    text = reports.wait(report_id).get_data(as_text=True)
    assert text.split("\n")[1].startswith("\"'-3\",")  # neutralised and quoted
    rows = list(csv.reader(io.StringIO(text)))
    assert [row[0] for row in rows[1:]] == ["'-3", "7", "'=HYPERLINK(\"http://x\")"]
    # The JSON rows carry the ids exactly as loaded.
    json_rows = reports.client.get(f"/api/v1/reports/{report_id}/rows?sort=store_id")
    assert [row["store_id"] for row in json_rows.get_json()["rows"]] == \
        ["-3", "7", '=HYPERLINK("http://x")']


def test_failed_report_gives_a_reason_and_a_reference_that_the_log_explains(
        app, reports, monkeypatch, caplog):
    secret = ("(psycopg.OperationalError) connection to server at \"10.1.2.3\", port 5432 "
              "failed [SQL: UPDATE report SET progress=%(progress)s]")

    def broken(progress=None, as_of_us=None):
        raise sa.exc.OperationalError("UPDATE report SET progress=%(progress)s", {}, secret)

    monkeypatch.setattr(pipeline, "compute_report", broken)
    with caplog.at_level(logging.ERROR):
        body = reports.wait(reports.trigger()).get_json()
    match = re.fullmatch(r"the database failed or could not be reached "
                         r"\(reference ([0-9a-f]{12})\)", body["error"])
    assert match, body
    assert "10.1.2.3" not in body["error"] and "SQL" not in body["error"]
    logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged and "10.1.2.3" in logged[0].exc_text


def test_unexpected_error_500_carries_a_reference_that_the_log_explains(
        client, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise ValueError("password=hunter2")

    monkeypatch.setattr(report_queue, "start_report", explode)
    with caplog.at_level(logging.ERROR):
        response = client.post("/trigger_report")
    assert response.status_code == 500
    reference = re.search(r"reference ([0-9a-f]{12})", response.get_json()["message"]).group(1)
    assert "hunter2" not in response.get_data(as_text=True)
    assert any(reference in r.getMessage() and "hunter2" in r.exc_text for r in caplog.records)


def test_unknown_format_is_400_while_the_report_runs(client, reports, monkeypatch):
    release = threading.Event()

    def slow(progress=None, as_of_us=None):
        release.wait(10)
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(pipeline, "compute_report", slow)
    report_id = reports.trigger()
    try:
        running = client.get(f"/get_report?report_id={report_id}")
        assert running.get_json()["status"] == "Running"
        response = client.get(f"/get_report?report_id={report_id}&format=xml")
        assert response.status_code == 400 and response.is_json
        assert "format" in response.get_json()["message"]
    finally:
        release.set()
