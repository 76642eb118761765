"""Headless Chromium for the browser tests: where it is, how it starts, screenshots and the
accessibility check. The `browser` fixture (tests/conftest.py) launches one per test module.

Chromium is the system's (Debian package `chromium`), found as `$CHROMIUM` or on the PATH;
Playwright downloads no browser. Without it the browser tests fail under CI (CI=true) and
are skipped elsewhere, saying how to install it.
"""

import os
import shutil
from pathlib import Path

from servers import PROJECT_DIR

SCREENSHOTS = PROJECT_DIR / "test-artifacts" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def chromium_path():
    """`$CHROMIUM` if set, else the first of the usual names on the PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def assert_accessible(page):
    """axe-core finds no serious or critical violation on the page."""
    page.evaluate(AXE.read_text())  # not a <script> tag: the pages' CSP allows none inline
    result = page.evaluate("""async () => {
        const result = await axe.run(document);
        return {passes: result.passes.length, violations: result.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)};
    }""")
    assert result["passes"] > 10  # the checker really ran (color-contrast, labels, ...)
    assert result["violations"] == []
