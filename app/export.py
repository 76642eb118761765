"""Report frame -> CSV text in the exact format of docs/report.md ("Rows, units and rounding"),
safe to open in a spreadsheet."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .engine.columns import REPORT_COLUMNS

HEADER = ["store_id", *(column.header for column in REPORT_COLUMNS)]
# A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_csv(frame: pd.DataFrame) -> str:
    """CSV text with the report header, rows sorted by store_id as strings, 2 decimals."""
    store_ids = frame["store_id"].astype(str).to_numpy(dtype=object)
    order = np.argsort(store_ids, kind="stable")
    numbers = pd.DataFrame({
        # Adding 0.0 turns a -0.0 into 0.0, so no cell reads "-0.00".
        column.header: np.round(frame[column.engine_name].to_numpy(dtype=np.float64)[order]
                                / column.seconds_per_unit, 2) + 0.0
        for column in REPORT_COLUMNS})
    buffer = io.StringIO()
    numbers.to_csv(buffer, index=False, header=False, float_format="%.2f", lineterminator="\n")
    number_lines = np.array(buffer.getvalue().split("\n")[:len(order)], dtype=object)
    cells = store_cells(pd.Series(store_ids[order], dtype=object)).to_numpy(dtype=object)
    rows = cells + "," + number_lines + "\n" if len(order) else np.array([], dtype=object)
    return ",".join(HEADER) + "\n" + "".join(rows)


def store_cells(store_ids: pd.Series) -> pd.Series:
    """Store ids as CSV cells: quoted when they hold a comma, quote or line break, and
    neutralised as OWASP recommends when a spreadsheet would take them for a formula (a
    leading single quote, and quoted). An id that starts with a single quote gets one more,
    so that `store_ids_from_csv` gives every id back exactly (for the JSON answers)."""
    formula = store_ids.str.startswith(FORMULA_STARTS + ("'",))
    text = store_ids.where(~formula, "'" + store_ids)
    quoted = formula | text.str.contains('[",\r\n]', regex=True)
    return text.where(~quoted, '"' + text.str.replace('"', '""', regex=False) + '"')


def store_ids_from_csv(cells: pa.Array) -> pa.Array:
    """The exact store ids of a parsed report CSV: one leading single quote removed."""
    quoted = pc.starts_with(cells, "'")
    return pc.if_else(quoted, pc.utf8_slice_codeunits(cells, 1), cells)
