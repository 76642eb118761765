"""Every golden case of ../shared/golden: ingest its files, report, match expected.csv."""

import io

import numpy as np
import pandas as pd
import pytest

from app.ingest import ingest
from app.jobs import compute_csv
from conftest import GOLDEN_DIR

CASES = sorted(p for p in GOLDEN_DIR.iterdir() if (p / "expected.csv").exists()) \
    if GOLDEN_DIR.is_dir() else []


def test_golden_cases_are_present():
    # Without the shared folder every case below would vanish; that must fail, not pass.
    assert len(CASES) >= 11, f"golden cases not found under {GOLDEN_DIR}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(app, case):
    with app.app_context():
        ingest(case)
        text, _ = compute_csv()
    got = pd.read_csv(io.StringIO(text), dtype={"store_id": str}, keep_default_na=False)
    expected = pd.read_csv(case / "expected.csv", dtype={"store_id": str},
                           keep_default_na=False)
    assert list(got.columns) == list(expected.columns)
    assert got["store_id"].tolist() == expected["store_id"].tolist()
    difference = np.abs(got.iloc[:, 1:].to_numpy(float) - expected.iloc[:, 1:].to_numpy(float))
    worst = np.unravel_index(difference.argmax(), difference.shape) if difference.size else None
    assert difference.size == 0 or difference.max() <= 0.01 + 1e-9, (
        f"store {got['store_id'][worst[0]]}, column {got.columns[worst[1] + 1]}: "
        f"{got.iloc[worst[0], worst[1] + 1]} != {expected.iloc[worst[0], worst[1] + 1]}")
