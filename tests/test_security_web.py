"""The web surface against hostile clients (issue 19, points 2-5, 7, 9 and 10): redirects
after sign-in, cross-site requests, the shared trigger limit, server-side sessions, bounded
metric labels, hardening headers and hosts, store ids with "/" or bidi controls, cached
keys. Through Flask's test client on a real database; Chromium cases are in
test_security_browser.py."""

import html
import re
from datetime import timedelta
from urllib.parse import urljoin

import pytest
import sqlalchemy as sa
from conftest import GOLDEN_DIR

from app.auth import keys
from app.extensions import db
from app.storage.models import WebSession, utcnow

SPEC_CASE = GOLDEN_DIR / "a_spec_example"


def csrf_token(page):
    return re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"',
                     page.get_data(as_text=True)).group(1)


def create_key(app, name="browser"):
    with app.app_context():
        return keys.create_key(name)


def sign_in(client, key, next_page="/"):
    form = client.get("/signin", query_string={"next": next_page})
    return client.post("/signin", data={"key": key, "next": next_page,
                                        "csrf_token": csrf_token(form)})


# 2. Open redirect ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/\t/evil.example/", "/\n/evil.example/", "/\r\n/evil.example/", "//evil.example/",
    "/\\evil.example/", "\\\\evil.example", "https://evil.example/", "http:/evil.example",
    "javascript:alert(1)", "///evil.example/", "/%0A", "evil.example", "/\x00/x",
    "/\u202e/x",
])
def test_sign_in_never_leads_off_the_site(app, client, target):
    key = create_key(app)
    answer = sign_in(client, key, target)
    assert answer.status_code == 303
    location = answer.headers["Location"]
    # "/%0A" is a plain path (its percent sign is kept): the only target allowed here.
    assert location == ("/%0A" if target == "/%0A" else "/"), (target, location)


def test_sign_in_form_keeps_a_local_next_and_drops_the_others(app, client):
    create_key(app)
    form = client.get("/signin?next=/%09/evil.example/")
    assert form.status_code == 200
    assert 'name="next" value="/"' in form.get_data(as_text=True)
    local = client.get("/signin?next=/reports/abc%3Fx%3D1")
    assert 'name="next" value="/reports/abc?x=1"' in local.get_data(as_text=True)
    signed_in = sign_in(client, keys_of(app)[0], "/reports/abc?x=1")
    assert signed_in.headers["Location"] == "/reports/abc?x=1"


def keys_of(app):
    with app.app_context():
        return [keys.create_key("second")]


# 3. Cross-site requests ---------------------------------------------------------------------

def test_requests_from_another_origin_are_refused_keys_or_not(client):
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Referer": "http://localhost:8081/attack.html"},
                    {"Sec-Fetch-Site": "cross-site"}):
        for path in ("/trigger_report", "/reports", "/api/v1/ingest"):
            answer = client.post(path, headers=headers)
            assert answer.status_code == 403, (path, headers)
            assert answer.get_json()["message"].startswith("cross-site request refused")
    # The same origin, and clients that say nothing about one (curl, scripts), pass.
    assert client.post("/trigger_report",
                       headers={"Origin": "http://localhost"}).status_code == 202
    assert client.post("/trigger_report").status_code == 202


def test_a_signed_in_cookie_needs_the_page_token_and_a_bearer_key_does_not(app, client):
    key = create_key(app)
    assert sign_in(client, key).status_code == 303
    refused = client.post("/trigger_report")
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["message"]
    assert client.post("/reports").status_code == 400
    dashboard = client.get("/")
    token = csrf_token(dashboard)
    assert client.post("/trigger_report", headers={"X-CSRFToken": token}).status_code == 202
    assert client.post("/reports", data={"csrf_token": token}).status_code == 303
    # A client with its key in a header needs no token, cookie or not.
    other = app.test_client()
    assert other.post("/trigger_report",
                      headers={"Authorization": f"Bearer {key}"}).status_code == 202
    assert client.post("/trigger_report",
                       headers={"Authorization": f"Bearer {key}"}).status_code == 202


# 4. One trigger limit -----------------------------------------------------------------------

def test_the_dashboard_form_shares_the_trigger_limit(app_factory):
    app = app_factory(TRIGGER_RATE_LIMIT="3 per minute")
    client = app.test_client()
    assert client.post("/trigger_report").status_code == 202
    assert client.post("/reports").status_code == 303
    assert client.post("/trigger_report").status_code == 202
    # The limit is reached by both paths together: both are refused now.
    refused = client.post("/reports")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert client.post("/trigger_report").status_code == 429


def test_the_dashboard_form_respects_the_queue_bound(app, client, monkeypatch):
    monkeypatch.setattr(app.extensions["report_runner"], "wake", lambda: None)  # all queued
    app.config["MAX_QUEUED_REPORTS"] = 1
    assert client.post("/reports").status_code == 303
    refused = client.post("/reports")
    assert refused.status_code == 429
    assert "1 reports are queued" in refused.get_json()["message"]


# 5. Sessions the server ends ----------------------------------------------------------------

def test_a_copied_cookie_stops_working_after_sign_out(app, client):
    key = create_key(app)
    create_key(app, "another")
    sign_in(client, key)
    cookie = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/").status_code == 200
    assert thief.get("/api/v1/data").status_code == 200
    signed_out = client.post("/signout", data={"csrf_token": csrf_token(client.get("/"))})
    assert signed_out.status_code == 303
    assert thief.get("/").status_code == 302  # to the sign-in page
    assert thief.get("/api/v1/data").status_code == 401
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(WebSession)
                                  ).scalar() == 0


def test_an_expired_session_is_refused(app, client):
    key = create_key(app)
    sign_in(client, key)
    assert client.get("/api/v1/data").status_code == 200
    with app.app_context():
        db.session.execute(sa.update(WebSession).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.get("/api/v1/data").status_code == 401
    assert client.get("/").status_code == 302


def test_a_session_lasts_session_hours(app_factory):
    app = app_factory(SESSION_HOURS=2)
    key = create_key(app)
    client = app.test_client()
    before = utcnow()
    sign_in(client, key)
    with app.app_context():
        row = db.session.execute(sa.select(WebSession)).scalar_one()
        assert timedelta(hours=2) <= row.expires_at - before < timedelta(hours=2, minutes=1)
        assert row.key_hash == keys.hash_key(key)
    assert app.permanent_session_lifetime == timedelta(hours=2)  # the cookie's signature too


# 7. Bounded metric labels -------------------------------------------------------------------

def _request_series(client):
    return len(re.findall(r"^store_monitor_http_requests_total\{", client.get(
        "/metrics").get_data(as_text=True), re.M))


def test_made_up_methods_make_no_new_series(client):
    client.open("/healthz", method="M")
    before = _request_series(client)  # the registry is the test process's: others count too
    for number in range(1000):
        client.open("/healthz", method=f"M{number}")
    scrape = client.get("/metrics").get_data(as_text=True)
    methods = set(re.findall(r'store_monitor_http_requests_total\{[^}]*method="([^"]+)"',
                             scrape))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "other" in methods
    # One series per route, method and status seen: the same few, not a thousand more.
    assert _request_series(client) <= before + 1  # the scrape itself may add one


# 9. Headers, hosts, paths, store ids --------------------------------------------------------

def test_every_answer_has_the_hardening_headers(client):
    for path in ("/", "/api/v1/data", "/healthz", "/metrics", "/docs", "/openapi.json",
                 "/nope", "/static/style.css"):
        with client.get(path) as answer:
            headers = answer.headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "same-origin", path
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, path
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, path


def test_links_use_public_url_and_never_a_made_up_host(app_factory):
    app = app_factory(PUBLIC_URL="https://monitor.example.com")
    client = app.test_client()
    report_id = client.post("/trigger_report").get_json()["report_id"]
    import time
    deadline = time.monotonic() + 30
    while True:
        body = client.get(f"/get_report?report_id={report_id}&format=json",
                          headers={"Host": "evil.example"}).get_json()
        if body["status"] != "Running" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert body["download_url"] == (f"https://monitor.example.com/get_report?report_id="
                                    f"{report_id}&format=csv")
    spec = client.get("/openapi.json", headers={"Host": "evil.example"}).get_json()
    assert spec["servers"] == [{"url": "https://monitor.example.com"}]


def test_without_public_url_the_document_names_no_server(client):
    spec = client.get("/openapi.json", headers={"Host": "evil.example"}).get_json()
    assert "servers" not in spec
    assert "evil.example" not in client.get("/openapi.json").get_data(as_text=True)


def test_trusted_hosts_refuse_other_hosts(app_factory):
    client = app_factory(TRUSTED_HOSTS=["monitor.example.com"]).test_client()
    assert client.get("/healthz", headers={"Host": "monitor.example.com"}).status_code == 200
    answer = client.get("/api/v1/data", headers={"Host": "evil.example"})
    assert answer.status_code == 400 and answer.is_json


def _load(client, status_csv, zones_csv=None):
    answer = client.post("/api/v1/ingest", data=status_csv.encode(), content_type="text/csv",
                         query_string={"kind": "status"})
    assert answer.status_code == 201, answer.get_json()
    if zones_csv:
        assert client.post("/api/v1/ingest", data=zones_csv.encode(), content_type="text/csv",
                           query_string={"kind": "timezone"}).status_code == 201


def test_a_store_id_with_a_slash_has_a_page_and_working_links(client, reports):
    _load(client, "store_id,timestamp_utc,status\n"
                  "north/17,2023-01-25 18:00:00 UTC,active\n"
                  "a/b/c,2023-01-25 17:00:00 UTC,inactive\n")
    report_id = reports.trigger()
    reports.wait(report_id)
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    links = re.findall(r'href="(/stores/[^"]+)"', page)
    assert links, page
    for link in links:
        answer = client.get(link.replace("&amp;", "&"))
        assert answer.status_code == 200, link
    store = client.get("/stores/north/17")
    assert store.status_code == 200 and "north/17" in store.get_data(as_text=True)
    timeline = client.get("/api/v1/stores/a/b/c/timeline")
    assert timeline.status_code == 200 and timeline.get_json()["store_id"] == "a/b/c"


def test_links_to_ids_with_dot_segments_open_that_store_not_another(client, reports):
    """A browser resolves "." and ".." segments of a link's path before it asks: "a/../b"
    written as a path would open store "b". Links write the id as one segment (%2F)."""
    ids = ["a/../b", "a/./b", "/lead", "b", "a/b"]
    _load(client, "store_id,timestamp_utc,status\n" + "".join(
        f"{store_id},2023-01-25 1{n}:00:00 UTC,active\n" for n, store_id in enumerate(ids)))
    report_id = reports.trigger()
    reports.wait(report_id)
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    links = {html.unescape(title): href for href, title in re.findall(
        r'href="(/stores/[^"?]+)[^"]*"><bdi>([^<]+)</bdi>', page)}
    assert set(links) == set(ids), links
    for store_id, href in links.items():
        resolved = urljoin(f"http://localhost/reports/{report_id}", href)  # as a browser does
        shown = client.get(resolved.removeprefix("http://localhost")).get_data(as_text=True)
        assert f"<bdi class=\"mono\">{html.escape(store_id)}</bdi>" in shown, (store_id, href)
        timeline = client.get(f"/api/v1{href}/timeline")
        assert timeline.get_json()["store_id"] == store_id


def test_bidi_overrides_in_ids_are_isolated(client, reports):
    spoof = "evil\u202egpj.exe"
    _load(client, f"store_id,timestamp_utc,status\n{spoof},2023-01-25 18:00:00 UTC,active\n")
    report_id = reports.trigger()
    reports.wait(report_id)
    report = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert f"<bdi>{spoof}</bdi>" in report
    store = client.get(f"/stores/{spoof}").get_data(as_text=True)
    assert f'<bdi class="mono">{spoof}</bdi>' in store
    assert f"<title>Store \u2068{spoof}\u2069" in store


# 10. Keys cached per process ----------------------------------------------------------------

def test_a_keyed_request_reads_no_key_from_the_database_once_cached(app, client):
    key = create_key(app)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/healthz", headers=headers).status_code == 200
    assert client.get("/api/v1/reports", headers=headers).status_code == 200
    statements = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(5):
            assert client.get("/api/v1/reports", headers=headers).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert not [s for s in statements if "api_key" in s], statements
    # The process that revokes forgets at once.
    with app.app_context():
        keys.create_key("other")
        keys.revoke_key("browser")
    assert client.get("/api/v1/reports", headers=headers).status_code == 403


def test_made_up_keys_are_not_kept_and_push_out_no_real_key(app, client, monkeypatch):
    from app.auth import keys
    with app.app_context():
        real = keys.create_key("real")
    monkeypatch.setattr(keys, "KEY_CACHE_SIZE", 4)
    assert client.get("/api/v1/data", headers={"Authorization": f"Bearer {real}"}
                      ).status_code == 200
    for n in range(20):
        assert client.get("/api/v1/data", headers={"Authorization": f"Bearer made-up-{n}"}
                          ).status_code == 401
    kept = app.extensions["api_key_rows"]
    assert list(kept) == [keys.hash_key(real)]


def test_a_recursion_that_is_not_the_clients_json_is_a_500_with_a_reference(app, client):
    @app.get("/test-recursion")
    def recurse():
        def deeper(n):
            return deeper(n + 1)
        return deeper(0)

    answer = client.get("/test-recursion")
    assert answer.status_code == 500 and "reference" in answer.get_json()["message"]
    nested = client.post("/trigger_report", data="[" * 100_000,
                         content_type="application/json")
    assert nested.status_code == 400 and "nested too deeply" in nested.get_json()["message"]
