"""Every golden case: ingest its files, report, match its expected.csv.

The cases live in tests/golden (described in tests/golden/README.md). When a shared golden
folder lies beside the repository, its cases that the repository lacks run too, and a case
present in both places must hold the same files.
"""

import filecmp
import io

import numpy as np
import pandas as pd
import pytest
from conftest import GOLDEN_DIR, SHARED_GOLDEN_DIR

from app.ingest.load import ingest
from app.reports.pipeline import compute_report

# Each case's README.md is prose about the case; only data files have to match.
NOT_DATA = {"README.md"}


def case_folders(root):
    """Sub-folders of `root` that are golden cases (they hold an expected.csv)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "expected.csv").is_file())


def differing_files(ours, theirs):
    """Names of the data files that are not byte-for-byte equal in two copies of a case
    (a file missing on one side counts as differing)."""
    names_ours = {p.name for p in ours.iterdir() if p.is_file()} - NOT_DATA
    names_theirs = {p.name for p in theirs.iterdir() if p.is_file()} - NOT_DATA
    missing = names_ours ^ names_theirs
    both = sorted(names_ours & names_theirs)
    _, mismatch, errors = filecmp.cmpfiles(ours, theirs, both, shallow=False)
    return sorted(missing | set(mismatch) | set(errors))


REPOSITORY_CASES = case_folders(GOLDEN_DIR)
SHARED_CASES = case_folders(SHARED_GOLDEN_DIR)
OURS = {p.name for p in REPOSITORY_CASES}
EXTRA_CASES = [p for p in SHARED_CASES if p.name not in OURS]
SAME_NAMED = [p.name for p in SHARED_CASES if p.name in OURS]
CASES = REPOSITORY_CASES + EXTRA_CASES
CASE_IDS = [p.name for p in REPOSITORY_CASES] + [f"shared:{p.name}" for p in EXTRA_CASES]


def test_the_repository_carries_its_golden_cases():
    assert len(REPOSITORY_CASES) >= 11, f"golden cases missing from {GOLDEN_DIR}"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden_case(app, case):
    with app.app_context():
        ingest(case)
        text = compute_report().csv
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


@pytest.mark.parametrize("name", SAME_NAMED or [pytest.param(None, marks=pytest.mark.skip(
    reason=f"no shared golden folder at {SHARED_GOLDEN_DIR} to compare with"))])
def test_repository_copy_matches_the_shared_case(name):
    differ = differing_files(GOLDEN_DIR / name, SHARED_GOLDEN_DIR / name)
    assert not differ, f"golden case {name}: tests/golden differs from the shared copy in {differ}"


def test_differing_files_names_changed_missing_and_extra_files(tmp_path):
    # Two hand-made copies of a case: one file equal, one edited, one on each side only,
    # and a README that differs but is not data.
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder in (ours, theirs):
        folder.mkdir()
        (folder / "expected.csv").write_text("store_id\n1\n")
    (ours / "store_status.csv").write_text("a,b\n")
    (theirs / "store_status.csv").write_text("a,c\n")
    (ours / "store_timezone.csv").write_text("x\n")
    (theirs / "business_hours.csv").write_text("y\n")
    (ours / "README.md").write_text("one")
    (theirs / "README.md").write_text("two")
    assert differing_files(ours, theirs) == [
        "business_hours.csv", "store_status.csv", "store_timezone.csv"]
