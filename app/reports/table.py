"""A Complete report's rows in columnar form, for pages and the rows API.

A report's CSV never changes once Complete, so each process parses it once (Arrow, a few
milliseconds for 14,000 rows) and keeps the columns, with each column's sort order worked
out on first use. Sorting, searching and paging a request then cost a few array operations.
"""

import io
import threading
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from app.reports.export import HEADER, store_ids_from_csv

# Weekly uptime as a share of the week's business time; not in the CSV, but sortable.
UPTIME_PCT = "uptime_last_week_pct"
COLUMNS = [*HEADER, UPTIME_PCT]
SORTABLE = tuple(COLUMNS)
HISTOGRAM_BINS = 10  # bins of equal width up to 100 %, below them one bin from 0
NICE_WIDTHS = (0.1, 0.2, 0.5, 1, 2, 5, 10)  # % per bin
TOP_STORES = 20
CACHED_REPORTS = 8


class ReportTable:
    """The rows of one report: sort, search and page them; headline figures."""

    def __init__(self, store_id, columns, once=None):
        """`store_id`: the exact ids (Arrow text); `columns`: `COLUMNS[1:]` as float
        arrays; `once`: figures already worked out (`figures_kept`)."""
        self.store_id = store_id
        self.columns = columns
        self._orders = {}
        self._lock = threading.Lock()
        self._once = dict(once or {})  # figures, histogram, top stores: on first use
        self._once_lock = threading.Lock()

    @classmethod
    def from_csv(cls, csv_text):
        """The table of a report's CSV."""
        # Typed columns: a report without rows (an empty database) has no values to infer
        # a type from.
        types = {"store_id": pa.string(), **{name: pa.float64() for name in HEADER[1:]}}
        table = pacsv.read_csv(io.BytesIO(csv_text.encode()),
                               convert_options=pacsv.ConvertOptions(column_types=types))
        # The CSV neutralises formula-like ids for spreadsheets; the rows carry them exact.
        store_id = store_ids_from_csv(table.column("store_id").combine_chunks())
        columns = {name: table.column(name).to_numpy().astype(np.float64, copy=False)
                   for name in HEADER[1:]}
        business = columns["uptime_last_week"] + columns["downtime_last_week"]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(business > 0, columns["uptime_last_week"] / business, np.nan)
        columns[UPTIME_PCT] = np.round(share * 100, 2)
        return cls(store_id, columns)

    def figures_kept(self):
        """The headline figures, histogram and top stores, worked out now if not yet, as
        a JSON-ready dict that `once` takes back."""
        return {"figures": self.figures(), "histogram": self.histogram(),
                "top": self.top_downtime()}

    @staticmethod
    def once_from_kept(kept):
        """`figures_kept`'s dict as `once` takes it."""
        return {"figures": kept["figures"], "histogram": kept["histogram"],
                ("top", TOP_STORES): kept["top"]}

    def __len__(self):
        return len(self.store_id)

    def order(self, sort, descending):
        """Row positions sorted by a column; ties (and stores without business time, last)
        keep the report's order by store id."""
        key = (sort, descending)
        with self._lock:
            if key not in self._orders:
                if sort == "store_id":
                    order = np.arange(len(self))
                    self._orders[key] = order[::-1].copy() if descending else order
                else:
                    values = self.columns[sort]
                    values = np.where(np.isnan(values), np.inf if not descending else -np.inf,
                                      values)
                    self._orders[key] = np.argsort(-values if descending else values,
                                                   kind="stable")
            return self._orders[key]

    def matching(self, query):
        """Positions of the stores whose id contains `query` (ignoring case), in order."""
        if not query:
            return None
        found = pc.match_substring(self.store_id, query, ignore_case=True)
        return np.flatnonzero(found.to_numpy(zero_copy_only=False))

    def page(self, sort="store_id", descending=False, query="", page=1, per_page=50,
             down=None):
        """One page of rows as dicts, and how many rows match. `down` ("hour", "day" or
        "week") keeps only the stores with downtime in that window."""
        order = self.order(sort, descending)
        found = self.matching(query)
        if found is not None or down:
            selected = np.ones(len(self), dtype=bool)
            if found is not None:
                selected[:] = False
                selected[found] = True
            if down:
                selected &= self.columns[f"downtime_last_{down}"] > 0
            order = order[selected[order]]
        start = (page - 1) * per_page
        return self.rows(order[start:start + per_page]), len(order)

    def rows(self, positions):
        """The rows at `positions` as dicts (a missing uptime share as None)."""
        ids = self.store_id.take(pa.array(positions, pa.int64())).to_pylist()
        values = {name: [None if v != v else v for v in column[positions].tolist()]
                  for name, column in self.columns.items()}
        return [{"store_id": store_id, **{name: values[name][i] for name in values}}
                for i, store_id in enumerate(ids)]

    def once(self, name, compute):
        """`compute()` the first time `name` is asked for, then the same value: a report's
        rows never change, and the home page asks for its figures at every visit."""
        with self._once_lock:
            if name not in self._once:
                self._once[name] = compute()
            return self._once[name]

    def figures(self):
        return self.once("figures", self._figures)

    def histogram(self):
        return self.once("histogram", self._histogram)

    def top_downtime(self, count=TOP_STORES):
        return self.once(("top", count), lambda: self._top_downtime(count))

    def _figures(self):
        """Headline figures: store counts, median and 10th percentile of weekly uptime."""
        share = self.columns[UPTIME_PCT]
        share = share[~np.isnan(share)]
        return {
            "stores": len(self),
            "stores_with_business_time": int(len(share)),
            "stores_down_last_day": int(np.count_nonzero(self.columns["downtime_last_day"] > 0)),
            "median_uptime_last_week_pct": _percentile(share, 50),
            "p10_uptime_last_week_pct": _percentile(share, 10),
        }

    def _histogram(self):
        """How many stores fall in each band of weekly uptime % (`histogram_edges`)."""
        share = self.columns[UPTIME_PCT]
        share = share[~np.isnan(share)]
        edges = histogram_edges(share)
        counts, _ = np.histogram(share, bins=edges)
        return {"edges": [round(float(e), 1) for e in edges], "counts": counts.tolist()}

    def _top_downtime(self, count):
        """The stores with the most downtime last week (those with none left out)."""
        order = self.order("downtime_last_week", True)[:count]
        order = order[self.columns["downtime_last_week"][order] > 0]
        return self.rows(order)


def histogram_edges(share):
    """Bin edges (%) that show the spread where the stores are: `HISTOGRAM_BINS` bins of a
    round width ending at 100 % that hold at least 95 % of the stores, and below them one
    bin from 0 % for the rest (left out when empty). The last bin includes 100 %."""
    low = float(np.percentile(share, 5)) if len(share) else 0.0
    width = next((w for w in NICE_WIDTHS if 100 - w * HISTOGRAM_BINS <= low), 10)
    edges = np.round(100 - width * np.arange(HISTOGRAM_BINS, -1, -1), 1)
    if len(share) and share.min() < edges[0]:
        edges = np.concatenate([[0.0], edges])
    return edges


def _percentile(values, q):
    return round(float(np.percentile(values, q)), 2) if len(values) else None


class TableCache:
    """The last few reports' tables, built on first use (a report's CSV never changes)."""

    def __init__(self, size=CACHED_REPORTS):
        self.size = size
        self._tables = OrderedDict()
        self._lock = threading.Lock()

    def get(self, report_id, read):
        """The table of `report_id`: kept, or `read()` (a `ReportTable`) and kept."""
        with self._lock:
            if report_id in self._tables:
                self._tables.move_to_end(report_id)
                return self._tables[report_id]
        table = read()
        with self._lock:
            self._tables[report_id] = table
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)
        return table


TABLES = TableCache()
