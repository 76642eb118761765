"""Report retention: finished reports beyond REPORT_RETENTION lose their CSV and answer 410."""

import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import GOLDEN_DIR

from app.extensions import db
from app.ingest.load import ingest
from app.reports.retention import expire_reports, parse_policy
from app.storage.models import Report, ReportCsv, utcnow


def test_policies_parse():
    assert parse_policy("") is None and parse_policy("  ") is None
    assert parse_policy("100") == ("count", 100)
    assert parse_policy("7d") == ("age", timedelta(days=7))
    assert parse_policy("12H") == ("age", timedelta(hours=12))
    with pytest.raises(ValueError, match="REPORT_RETENTION"):
        parse_policy("a week")


def _report(app, age, status=Report.COMPLETE):
    with app.app_context():
        report = Report(id=str(uuid.uuid4()), status=status, created_at=utcnow() - age,
                        finished_at=None if status == Report.RUNNING else utcnow() - age,
                        worker="elsewhere:1:x", heartbeat_at=utcnow())
        db.session.add(report)
        if status == Report.COMPLETE:
            db.session.add(ReportCsv(report_id=report.id, csv="store_id\n"))
        db.session.commit()
        return report.id


def _state(app, report_id):
    with app.app_context():
        report = db.session.get(Report, report_id)
        kept = db.session.get(ReportCsv, report_id)
        return None if kept is None else kept.csv, report.expired_at is not None


def test_keep_the_newest_n_reports(app, client):
    app.config["REPORT_RETENTION"] = "2"
    # Oldest first: two finished ones beyond the newest two, and a Running one (kept).
    oldest, old_running, old, newer, newest = (
        _report(app, timedelta(hours=5)), _report(app, timedelta(hours=4), Report.RUNNING),
        _report(app, timedelta(hours=3), Report.ERROR), _report(app, timedelta(hours=2)),
        _report(app, timedelta(hours=1)))
    with app.app_context():
        assert expire_reports() == 2
        assert expire_reports() == 0  # applying it again changes nothing
    assert _state(app, oldest) == (None, True) and _state(app, old)[1]
    assert _state(app, newest) == ("store_id\n", False) and not _state(app, newer)[1]
    assert not _state(app, old_running)[1]
    gone = client.get(f"/get_report?report_id={oldest}")
    assert gone.status_code == 410 and gone.is_json
    assert "REPORT_RETENTION" in gone.get_json()["message"]
    assert client.get(f"/api/v1/reports/{oldest}").status_code == 410
    page = client.get(f"/reports/{oldest}")  # the dashboard says so in a page
    assert page.status_code == 410 and "Report removed" in page.get_data(as_text=True)
    assert client.get(f"/get_report?report_id={newest}").status_code == 200


def test_keep_the_reports_of_the_last_days(app):
    app.config["REPORT_RETENTION"] = "1d"
    old, recent = _report(app, timedelta(days=2)), _report(app, timedelta(hours=20))
    with app.app_context():
        assert expire_reports() == 1
    assert _state(app, old)[1] and not _state(app, recent)[1]


def test_the_heartbeat_applies_the_policy(app, client, reports):
    app.config["REPORT_RETENTION"] = "1"
    with app.app_context():
        ingest(GOLDEN_DIR / "a_spec_example")
    first = reports.trigger()
    reports.wait(first)
    second = reports.trigger()
    reports.wait(second)
    deadline = time.monotonic() + 20  # the heartbeat beats every 0.2 s in the tests
    while client.get(f"/get_report?report_id={first}").status_code != 410:
        assert time.monotonic() < deadline, "the first report was never expired"
        time.sleep(0.1)
    assert client.get(f"/get_report?report_id={second}").status_code == 200


def test_polls_see_an_expiry_by_another_process_within_the_cache_time(app, client):
    """Finished states are kept per process (app.reports.state): an expiry written by another
    process shows after at most FINISHED_STATE_SECONDS; one by this process, at once."""
    app.config["FINISHED_STATE_SECONDS"] = 0.5
    elsewhere, here = _report(app, timedelta(hours=2)), _report(app, timedelta(hours=1))
    for report_id in (elsewhere, here):
        assert client.get(f"/get_report?report_id={report_id}&format=json").status_code == 200
    with app.app_context():  # what another process's heartbeat would write
        db.session.execute(sa.update(Report).where(Report.id == elsewhere)
                           .values(expired_at=utcnow()))
        db.session.execute(sa.delete(ReportCsv).where(ReportCsv.report_id == elsewhere))
        db.session.commit()
    deadline = time.monotonic() + 5
    while client.get(f"/get_report?report_id={elsewhere}").status_code != 410:
        assert time.monotonic() < deadline, "the expiry never showed"
        time.sleep(0.05)
    app.config["FINISHED_STATE_SECONDS"] = 3600  # from now on, only a local expiry can show
    assert client.get(f"/get_report?report_id={here}&format=json").status_code == 200
    app.config["REPORT_RETENTION"] = "0"
    with app.app_context():
        assert expire_reports() == 1
    assert client.get(f"/get_report?report_id={here}").status_code == 410
