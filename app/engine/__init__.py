"""Pure report computation: data frames in, data frames out (no database, files or Flask)."""

from .as_of import report_as_of
from .report import COLUMNS, ReportResult, build_report
from .timeline import Timelines, build_timelines

__all__ = ["COLUMNS", "ReportResult", "Timelines", "build_report", "build_timelines",
           "report_as_of"]
