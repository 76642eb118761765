"""app.engine.instants: the one way instants are written (ISO 8601, UTC, exact to the µs)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.engine.instants import datetime_us, iso_datetime, iso_instant, iso_local, iso_utc

# 2023-01-25 18:13:22.479220 UTC, worked out by hand: 19,382 days after 1970-01-01
# (53 years with 13 leap days, then 24 days of January), plus 18 h 13 min 22.47922 s.
POLL_US = (19_382 * 86_400 + 18 * 3600 + 13 * 60 + 22) * 1_000_000 + 479_220


@pytest.mark.parametrize("instant_us, text", [
    (0, "1970-01-01T00:00:00Z"),
    (POLL_US, "2023-01-25T18:13:22.479220Z"),
    (POLL_US - 479_220, "2023-01-25T18:13:22Z"),  # no fraction: none written
    (1, "1970-01-01T00:00:00.000001Z"),
    (-1, "1969-12-31T23:59:59.999999Z"),
    (253_402_300_799_000_000, "9999-12-31T23:59:59Z"),
])
def test_one_text_for_one_instant_whichever_function_writes_it(instant_us, text):
    assert iso_instant(instant_us) == text
    assert iso_utc([instant_us]) == [text]


def test_instants_past_year_9999_are_still_written():
    # Beyond Python's datetime: numpy writes the five-digit year.
    assert iso_instant(253_402_300_800_000_000) == "10000-01-01T00:00:00Z"


def test_database_datetimes_are_naive_utc():
    moment = datetime(2023, 1, 25, 18, 13, 22, 479_220)
    assert datetime_us(moment) == POLL_US
    assert iso_datetime(moment) == "2023-01-25T18:13:22.479220Z"
    aware = datetime(2023, 1, 25, 12, 13, 22, 479_220, tzinfo=ZoneInfo("America/Chicago"))
    assert datetime_us(aware) == POLL_US
    assert iso_datetime(None) is None and iso_instant(None) is None


def test_local_text_carries_the_offset_in_force():
    # Chicago is UTC-6 in January; on 2023-07-01 (daylight time) UTC-5.
    july_us = (19_539 * 86_400 + 15 * 3600) * 1_000_000  # 2023-07-01 15:00 UTC
    assert iso_local([POLL_US, july_us], "America/Chicago") == [
        "2023-01-25T12:13:22.479220-06:00", "2023-07-01T10:00:00-05:00"]
    assert iso_local([0], "Asia/Kolkata") == ["1970-01-01T05:30:00+05:30"]
