"""The report's columns, in one table: what the engine computes and what the CSV shows.

The engine works in seconds (`uptime_last_hour_s`); the CSV (docs/report.md) shows the same value
under `uptime_last_hour`, in minutes for the hour and hours otherwise. Both names and the
unit come from each `ReportColumn`, so they cannot drift apart.
"""

from dataclasses import dataclass

WINDOWS = ("hour", "day", "week")
SECONDS_PER_UNIT = {"hour": 60.0, "day": 3600.0, "week": 3600.0}  # minutes, hours, hours


@dataclass(frozen=True)
class ReportColumn:
    kind: str  # "uptime" or "downtime"
    window: str  # "hour", "day" or "week"

    @property
    def header(self):
        """The CSV header."""
        return f"{self.kind}_last_{self.window}"

    @property
    def engine_name(self):
        """The engine's column, in seconds."""
        return f"{self.header}_s"

    @property
    def seconds_per_unit(self):
        """Seconds in one unit of the CSV value."""
        return SECONDS_PER_UNIT[self.window]


# In the CSV's order: every uptime, then every downtime.
REPORT_COLUMNS = tuple(ReportColumn(kind, window)
                       for kind in ("uptime", "downtime") for window in WINDOWS)
