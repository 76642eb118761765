"""Pure report computation: data frames in, data frames out (no database, files or Flask)."""

from .report import COLUMNS, ReportResult, build_report

__all__ = ["COLUMNS", "ReportResult", "build_report"]
