"""A real browser against the service's defences (issue 19, points 2, 3 and 9): headless
Chromium (Playwright, the system's Chromium) and a real `run.py` server with an API key.

- a `next` that the server would once turn into another host's address leaves Chromium on
  this site;
- a page of another origin (a small HTTP server on another port of the same host, which
  is the same *site*, so SameSite cookies go along) cannot make a signed-in Chromium start
  a report or upload data;
- under the Content-Security-Policy every page, and the Swagger UI at /docs, still works
  without a single violation.
"""

import http.server
import os
import subprocess
import sys
import threading

import pytest
import requests
from conftest import GOLDEN_DIR, PROJECT_DIR
from servers import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """`run.py` on the spec example with one API key; yields (server, key)."""
    folder = tmp_path_factory.mktemp("security-browser")
    env = {"DATABASE_URL": f"sqlite:///{folder / 'keyed.sqlite3'}", "STORE_DATA": ""}
    created = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys", "create",
                              "browser"], cwd=PROJECT_DIR, capture_output=True, text=True,
                             timeout=120, env={**os.environ, **env})
    assert created.returncode == 0, created.stderr
    server = Server(folder, SERVER_PROCESSES="1", **{
        **env, "STORE_DATA": str(GOLDEN_DIR / "a_spec_example")}).start(timeout=120)
    yield server, created.stdout.strip()
    server.stop()


class _Attacker:
    """An HTTP server on another port serving one page (`html`), recording the requests."""

    def __init__(self):
        self.html = ""
        self.seen = []
        attacker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (the standard library's name)
                attacker.seen.append(self.path)
                body = attacker.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attacker():
    running = _Attacker()
    yield running
    running.close()


def sign_in(page, server, key):
    page.goto(server.url + "/")
    page.wait_for_url("**/signin?next=/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def report_count(server, key):
    answer = requests.get(f"{server.url}/api/v1/reports", params={"limit": 100}, timeout=10,
                          headers={"Authorization": f"Bearer {key}"})
    answer.raise_for_status()
    return len(answer.json()["reports"])


def ingest_count(server, key):
    answer = requests.get(f"{server.url}/api/v1/ingests", timeout=10,
                          headers={"Authorization": f"Bearer {key}"})
    answer.raise_for_status()
    return answer.json()["total"]


def test_next_never_takes_chromium_to_another_host(browser, keyed_server, attacker):
    server, key = keyed_server
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, server, key)
        elsewhere = attacker.url.removeprefix("http://")
        for target in (f"/%09/{elsewhere}/", f"/%0A/{elsewhere}/", f"//{elsewhere}/",
                       f"/%5C{elsewhere}/"):
            page.goto(f"{server.url}/signin?next={target}")
            page.wait_for_load_state()
            assert page.url == server.url + "/", (target, page.url)
        assert attacker.seen == []
    finally:
        context.close()


def test_another_origin_cannot_make_a_signed_in_browser_change_anything(
        browser, keyed_server, attacker):
    server, key = keyed_server
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, server, key)
        reports, ingests = report_count(server, key), ingest_count(server, key)
        # The same page works from this site: the dashboard's own button starts a report.
        page.get_by_role("button", name="Run report").click()
        page.wait_for_url("**/reports/*", timeout=60_000)
        assert report_count(server, key) == reports + 1
        reports += 1
        attacker.html = f"""<!doctype html><body>
            <form id="f" method="post" action="{server.url}/reports"></form>
            <script>
              const csv = "store_id,timestamp_utc,status\\n7,2023-01-25 10:00:00 UTC,active\\n";
              const form = new FormData();
              form.append("file", new Blob([csv], {{type: "text/csv"}}), "store_status.csv");
              Promise.allSettled([
                fetch("{server.url}/api/v1/ingest", {{method: "POST", body: form,
                      credentials: "include", mode: "no-cors"}}),
                fetch("{server.url}/trigger_report", {{method: "POST",
                      credentials: "include", mode: "no-cors"}}),
              ]).then(() => {{ document.title = "sent"; document.getElementById("f").submit(); }});
            </script></body>"""
        page.goto(attacker.url + "/attack.html")
        page.wait_for_url(f"{server.url}/reports", timeout=30_000)  # the form's answer
        assert "cross-site request refused" in page.content()
        assert report_count(server, key) == reports
        assert ingest_count(server, key) == ingests
    finally:
        context.close()


def test_pages_and_the_api_docs_work_under_the_content_security_policy(
        browser, keyed_server):
    server, key = keyed_server
    context = browser.new_context()
    page = context.new_page()
    violations, errors = [], []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, server, key)
        page.get_by_role("button", name="Run report").click()
        page.wait_for_url("**/reports/*", timeout=60_000)
        page.wait_for_selector("#histogram canvas, #histogram svg, #histogram .u-wrap")
        page.get_by_role("link", name="1001").first.click()
        page.wait_for_url("**/stores/1001*")
        page.wait_for_selector("#week-chart .u-wrap")
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "Store Monitor" in page.locator(".swagger-ui .info .title").inner_text()
        page.wait_for_selector(".opblock-summary-path")  # the operations are listed
        assert violations == [] and errors == [], (violations, errors)
    finally:
        context.close()
