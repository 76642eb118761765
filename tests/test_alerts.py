"""The example alert rules in docs/alerts.yml: valid for Prometheus, and each alert fires
on the series it is meant for (promtool's unit tests in tests/alerts_test.yml)."""

import os
import shutil
import subprocess

import pytest
from conftest import PROJECT_DIR


@pytest.fixture
def promtool():
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):  # CI installs it (.ci/run): a missing tool is a failure there
            pytest.fail("promtool not found; install Debian's prometheus package")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def test_alert_rules_are_valid(promtool):
    subprocess.run([promtool, "check", "rules", str(PROJECT_DIR / "docs" / "alerts.yml")],
                   check=True, capture_output=True)


def test_each_alert_fires_on_its_series(promtool):
    result = subprocess.run([promtool, "test", "rules", "alerts_test.yml"],
                            cwd=PROJECT_DIR / "tests", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
