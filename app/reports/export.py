"""Report frame -> CSV text in the exact format of docs/report.md ("Rows, units and rounding"),
safe to open in a spreadsheet."""


import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from app.engine.columns import REPORT_COLUMNS

HEADER = ["store_id", *(column.header for column in REPORT_COLUMNS)]


def report_csv(frame: pd.DataFrame) -> str:
    """CSV text with the report header, rows sorted by store_id as strings, 2 decimals.

    Every cell is formatted by Arrow's compute kernels (pandas' `to_csv` formats floats
    one Python call at a time), and the rows end up one after another in one buffer.
    """
    store_ids = pa.array(frame["store_id"].astype(str).to_numpy(dtype=object), pa.string())
    # UTF-8 bytes sort as the code points of Python's `str` do.
    order = pc.sort_indices(store_ids).to_numpy()
    numbers = [_hundredths(frame[column.engine_name].to_numpy(dtype=np.float64)[order]
                           / column.seconds_per_unit) for column in REPORT_COLUMNS]
    rows = pc.binary_join_element_wise(store_cells(store_ids.take(order)), *numbers, ",")
    lines = pc.binary_join_element_wise(rows, "", "\n")  # each row, then a line break
    return ",".join(HEADER) + "\n" + _joined(lines)


def hundredths(values):
    """The one rounding rule of every figure shown (docs/report.md): the value times 100,
    rounded to the nearest integer (a tie to the even one), divided by 100. As floats, for
    JSON; `"%.2f"` of them is the CSV's text."""
    return np.rint(np.asarray(values, dtype=np.float64) * 100) / 100


def _hundredths(values):
    """Numbers as text with two decimals, rounded by the rule of `hundredths` (and never
    "-0.00")."""
    cents = np.rint(values * 100).astype(np.int64)
    size = np.abs(cents)
    whole = pc.cast(pa.array(size // 100), pa.string())
    fraction = pc.utf8_lpad(pc.cast(pa.array(size % 100), pa.string()), 2, "0")
    text = pc.binary_join_element_wise(whole, fraction, ".")
    negative = cents < 0
    if negative.any():
        text = pc.if_else(pa.array(negative), pc.utf8_replace_slice(text, 0, 0, "-"), text)
    return text


def _joined(texts):
    """The values of a string array one after another, as one str."""
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)
    first, last = offsets[texts.offset], offsets[texts.offset + len(texts)]
    return texts.buffers()[2].to_pybytes()[first:last].decode() if len(texts) else ""


def store_cells(store_ids: pa.Array) -> pa.Array:
    """Store ids as CSV cells: quoted when they hold a comma, quote or line break, and
    neutralised as OWASP recommends when a spreadsheet would take them for a formula (a
    leading single quote, and quoted). An id that starts with a single quote gets one more,
    so that `store_ids_from_csv` gives every id back exactly (for the JSON answers)."""
    # A cell starting with one of = + - @ tab CR is a formula to a spreadsheet (OWASP, CSV
    # injection); one starting with a single quote gets another.
    formula = pc.match_substring_regex(store_ids, "^[=+\\-@\t\r']")
    text = pc.if_else(formula, pc.utf8_replace_slice(store_ids, 0, 0, "'"), store_ids)
    quoted = pc.or_(formula, pc.match_substring_regex(text, '[",\r\n]'))
    escaped = pc.binary_join_element_wise(
        '"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(quoted, escaped, text)


def store_ids_from_csv(cells: pa.Array) -> pa.Array:
    """The exact store ids of a parsed report CSV: one leading single quote removed."""
    quoted = pc.starts_with(cells, "'")
    if not pc.any(quoted).as_py():  # the usual case: nothing to copy
        return cells
    return pc.if_else(quoted, pc.utf8_slice_codeunits(cells, 1), cells)
