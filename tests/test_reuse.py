"""A report computed once per data version: later triggers get the same CSV until an
ingest changes the data."""

import logging

from conftest import GOLDEN_DIR, write_csv

from app.extensions import db
from app.ingest.load import ingest
from app.storage.models import Report


def state(client, report_id):
    return client.get(f"/get_report?report_id={report_id}&format=json").get_json()


def test_trigger_without_new_data_reuses_the_complete_report(app, client, reports, tmp_path,
                                                             caplog):
    case = GOLDEN_DIR / "a_spec_example"
    with app.app_context():
        ingest(case)
    first = reports.trigger()
    first_csv = reports.wait(first).get_data(as_text=True)
    assert first_csv == (case / "expected.csv").read_text()
    assert state(client, first)["reused_from"] is None

    with caplog.at_level(logging.INFO, logger="app"):
        second = reports.trigger()
        second_csv = reports.wait(second).get_data(as_text=True)
    assert second != first and second_csv == first_csv
    assert state(client, second)["reused_from"] == first
    assert any(f"report {second} reuses the CSV of report {first}" in r.getMessage()
               for r in caplog.records)

    # New data: the next trigger computes again, and sees the new store.
    more = write_csv(tmp_path / "more", "store_status.csv",
                     "store_id,timestamp_utc,status\nzz,2023-01-23 11:00:00 UTC,active")
    with app.app_context():
        ingest(more)
    third = reports.trigger()
    third_csv = reports.wait(third).get_data(as_text=True)
    assert state(client, third)["reused_from"] is None
    assert third_csv != first_csv and "\nzz," in third_csv


def test_reuse_can_be_switched_off(app, client, reports):
    app.config["REUSE_REPORTS"] = False
    with app.app_context():
        ingest(GOLDEN_DIR / "c_overnight")
    ids = [reports.trigger() for _ in range(2)]
    texts = [reports.wait(i).get_data(as_text=True) for i in ids]
    assert texts[0] == texts[1] == (GOLDEN_DIR / "c_overnight" / "expected.csv").read_text()
    with app.app_context():
        reused = [db.session.get(Report, i).reused_from for i in ids]
    assert reused == [None, None]
