"""One rule for `as_of` everywhere (API trigger, store timeline, store page, `flask report`):
an ISO 8601 instant, not before the first poll, not in the future."""

import pytest
from conftest import GOLDEN_DIR

from app.engine.instants import parse_instant
from app.ingest.load import ingest

SPEC_CASE = GOLDEN_DIR / "a_spec_example"


@pytest.fixture
def loaded(app):
    with app.app_context():
        ingest(SPEC_CASE)
    return app


@pytest.mark.parametrize("text, instant_us", [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01 00:00:01 UTC", 1_000_000),
    ("1970-01-01T05:30:00+05:30", 0),
    ("1970-01-01T00:00:00.5", 500_000),  # no offset: UTC
])
def test_instants_are_read_one_way(text, instant_us):
    assert parse_instant(text) == instant_us


@pytest.mark.parametrize("text", ["tomorrow", "", "2023-13-01", "12:00"])
def test_what_is_not_an_instant_says_so(text):
    with pytest.raises(ValueError, match="is not an ISO 8601 instant"):
        parse_instant(text)


def test_a_future_as_of_is_refused_on_every_path(loaded, runner, tmp_path):
    client = loaded.test_client()
    future = "2300-01-01T00:00:00Z"
    trigger = client.post("/trigger_report", json={"as_of": future})
    assert trigger.status_code == 400 and "in the future" in trigger.get_json()["message"]
    timeline = client.get(f"/api/v1/stores/1001/timeline?as_of={future}")
    assert timeline.status_code == 400 and "in the future" in timeline.get_json()["message"]
    page = client.get(f"/stores/1001?as_of={future}")
    assert page.status_code == 404 and "in the future" in page.get_data(as_text=True)
    result = runner.invoke(args=["report", "--out", str(tmp_path / "r.csv"), "--as-of",
                                 future])
    assert result.exit_code == 1 and "in the future" in result.output
    assert result.output.strip().splitlines() == [
        "Error: --as-of 2300-01-01T00:00:00Z is in the future"]  # one line


def test_an_as_of_before_the_first_poll_is_refused_too(loaded, runner, tmp_path):
    client = loaded.test_client()
    early = "2000-01-01T00:00:00Z"
    timeline = client.get(f"/api/v1/stores/1001/timeline?as_of={early}")
    assert timeline.status_code == 400 and "before the first poll" in timeline.get_json()[
        "message"]
    result = runner.invoke(args=["report", "--out", str(tmp_path / "r.csv"), "--as-of",
                                 early])
    assert result.exit_code == 1 and "before the first poll" in result.output
    # Inside the data: the week ends there.
    week = client.get("/api/v1/stores/1001/timeline?as_of=2023-01-23T18:00:00Z").get_json()
    assert week["now"] == "2023-01-23T18:00:00Z"
