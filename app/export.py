"""Report frame -> CSV text in the exact format of docs/report.md ("Rows, units and rounding")."""

import io

import numpy as np
import pandas as pd

HEADER = ["store_id", "uptime_last_hour", "uptime_last_day", "uptime_last_week",
          "downtime_last_hour", "downtime_last_day", "downtime_last_week"]
# Engine column (seconds) -> seconds per output unit: minutes for the hour, hours otherwise.
_UNITS = {f"{kind}_last_{window}_s": 60.0 if window == "hour" else 3600.0
          for kind in ("uptime", "downtime") for window in ("hour", "day", "week")}


def report_csv(frame: pd.DataFrame) -> str:
    """CSV text with the report header, rows sorted by store_id as strings, 2 decimals."""
    out = pd.DataFrame({"store_id": frame["store_id"].astype(str)})
    for name, (column, seconds) in zip(HEADER[1:], _UNITS.items()):
        # Adding 0.0 turns a -0.0 into 0.0, so no cell reads "-0.00".
        out[name] = np.round(frame[column].to_numpy(dtype=np.float64) / seconds, 2) + 0.0
    out = out.iloc[np.argsort(out["store_id"].to_numpy(dtype=object), kind="stable")]
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, float_format="%.2f", lineterminator="\n")
    return buffer.getvalue()
