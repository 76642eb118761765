"""API keys, rate limits and the bound on queued reports."""

import hashlib
import re
import uuid

import pytest
import sqlalchemy as sa
from conftest import Reports, close_app, make_app

from app.extensions import db
from app.reports import queue as report_queue

REDIS_URL = "redis://127.0.0.1:6379"


def _stored_keys(app):
    with app.app_context():
        return db.session.execute(sa.text(
            "SELECT name, key_hash, prefix, revoked_at FROM api_key ORDER BY id")).all()


def _create(runner, name):
    result = runner.invoke(args=["keys", "create", name])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_a_key_is_printed_once_and_only_its_hash_is_stored(app, runner):
    key = _create(runner, "ci")
    assert re.fullmatch(r"smk_[A-Za-z0-9_-]{43}", key)  # 32 random bytes, URL-safe base64
    ((name, key_hash, prefix, revoked),) = _stored_keys(app)
    assert (name, prefix, revoked) == ("ci", key[:12], None)
    assert key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in key_hash
    listed = runner.invoke(args=["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert "ci" in listed.output and key[:12] in listed.output and key not in listed.output
    assert runner.invoke(args=["keys", "create", "ci"]).exit_code == 1  # names are unique


def test_without_keys_the_api_stays_open(client):
    assert client.post("/trigger_report").status_code == 202


def test_with_a_key_requests_need_it_and_probes_stay_open(app, client, runner):
    key = _create(runner, "dashboard")
    missing = client.post("/trigger_report")
    assert missing.status_code == 401 and missing.is_json
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert missing.get_json()["error"] == "Unauthorized"
    for header in (_bearer("smk_wrong"), {"Authorization": key}, _bearer("")):
        answer = client.get(f"/get_report?report_id={uuid.uuid4()}", headers=header)
        assert answer.status_code == 401 and answer.is_json
    good = client.post("/trigger_report", headers=_bearer(key))
    assert good.status_code == 202
    report_id = good.get_json()["report_id"]
    assert client.get(f"/get_report?report_id={report_id}", headers=_bearer(key)) \
        .status_code == 200
    assert client.get(f"/get_report?report_id={report_id}").status_code == 401
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_a_revoked_key_is_refused_with_403_and_others_still_work(app, client, runner):
    old, other = _create(runner, "old"), _create(runner, "other")
    result = runner.invoke(args=["keys", "revoke", "old"])
    assert result.exit_code == 0 and "warning" not in result.output
    refused = client.post("/trigger_report", headers=_bearer(old))
    assert refused.status_code == 403 and refused.get_json()["message"] == \
        "this API key was revoked"
    assert client.post("/trigger_report", headers=_bearer(other)).status_code == 202
    assert runner.invoke(args=["keys", "revoke", "old"]).exit_code == 1  # not active
    # Revoking the last active key opens the API again, and the command says so.
    last = runner.invoke(args=["keys", "revoke", "other"])
    assert last.exit_code == 0 and "open to every client" in last.output
    assert client.post("/trigger_report").status_code == 202


def test_the_openapi_document_declares_the_key_and_the_refusals(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    trigger = spec["paths"]["/trigger_report"]["post"]
    assert {"401", "403", "429"} <= set(trigger["responses"])
    assert "security" not in spec["paths"]["/health"]["get"]


def test_triggers_beyond_the_rate_limit_get_a_json_429_with_retry_after(app, client):
    app.config["TRIGGER_RATE_LIMIT"] = "3 per minute"
    statuses = [client.post("/trigger_report").status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    refused = client.post("/trigger_report")
    assert refused.is_json and refused.get_json()["error"] == "Too Many Requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert client.get("/health").status_code == 200  # probes are never limited


def _redis_app(database_url, prefix):
    return make_app(database_url, TRIGGER_RATE_LIMIT="3 per minute",
                    RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix)


def test_processes_sharing_redis_share_the_counters(database_url):
    # Two apps stand for two server processes; counts in the local Redis are shared, so
    # the fourth trigger is refused although each app saw at most two.
    prefix = f"test-{uuid.uuid4().hex}"
    first, second = _redis_app(database_url, prefix), _redis_app(database_url, prefix)
    try:
        a, b = first.test_client(), second.test_client()
        statuses = [client.post("/trigger_report").status_code for client in (a, b, a, b)]
        assert statuses == [202, 202, 202, 429]
        assert "Retry-After" in b.post("/trigger_report").headers
    finally:
        import redis
        server = redis.Redis.from_url(REDIS_URL)
        for name in server.scan_iter(f"{prefix}*"):
            server.delete(name)
        for app in (first, second):
            close_app(app)


@pytest.fixture
def idle_runner(app, monkeypatch):
    """No process claims reports: everything triggered stays queued."""
    monkeypatch.setattr(app.extensions["report_runner"], "wake", lambda: None)


def test_a_full_queue_refuses_triggers_with_429_until_there_is_room(app, client, idle_runner):
    app.config["MAX_QUEUED_REPORTS"] = 2
    first, second = Reports(client).trigger(), Reports(client).trigger()
    refused = client.post("/trigger_report")
    assert refused.status_code == 429 and refused.is_json
    assert "2 reports are queued" in refused.get_json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 300
    with app.app_context():  # a worker claims one: room for one more
        assert report_queue.claim_next() == first
    assert client.post("/trigger_report").status_code == 202
    assert client.post("/trigger_report").status_code == 429
    assert second


def csrf_token(page):
    """The CSRF token a page carries (its forms' hidden field, or its meta element)."""
    return re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"',
                     page.get_data(as_text=True)).group(1)


def test_browsers_sign_in_with_a_key_and_revoking_it_ends_the_session(app, client, runner):
    key = _create(runner, "browser")
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/signin?next=/")
    assert client.get(f"/get_report?report_id={uuid.uuid4()}").status_code == 401  # API: JSON
    wrong = client.post("/signin", data={"key": "smk_wrong", "next": "/"})
    assert wrong.status_code == 401 and "not valid" in wrong.get_data(as_text=True)
    # Forms carry the page's CSRF token (app.auth.csrf), scripts send it as X-CSRFToken.
    elsewhere = client.post("/signin", data={"key": key, "next": "//evil.example/",
                                             "csrf_token": csrf_token(wrong)})
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/"
    cookie = elsewhere.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and key not in cookie
    # Signed in: pages, and the pages' own calls to the API, pass with the cookie alone.
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    report_id = client.post("/trigger_report", headers={
        "X-CSRFToken": csrf_token(dashboard)}).get_json()["report_id"]
    assert client.get(f"/get_report?report_id={report_id}&format=json").status_code == 200
    assert client.get("/signin").headers["Location"] == "/"  # nothing to do: signed in
    assert runner.invoke(args=["keys", "revoke", "browser"]).exit_code == 0
    _create(runner, "another")  # keys stay active, so the API stays closed
    assert client.get("/").headers["Location"].startswith("/signin")  # a page: sign in again
    client.post("/signin", data={"key": key})  # refused: revoked
    assert client.get(f"/get_report?report_id={report_id}").status_code == 401
    assert client.post("/signout", data={"csrf_token": csrf_token(
        client.get("/signin"))}).headers["Location"] == "/signin"
