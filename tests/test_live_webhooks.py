"""Webhook alerts (app.live.webhooks): a receiver on 127.0.0.1 started by the test gets
signed deliveries of the incidents an ingest opens; a failing answer is retried with the
same event id and body."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_live_state import feed

from app.live import webhooks


class Receiver:
    """An HTTP server that records every POST and fails the first `failures` of them."""

    def __init__(self, failures=0):
        self.received, self.failures = [], failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = 500 if len(receiver.received) <= receiver.failures else 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = Receiver(failures=2)
    yield made
    made.close()


def test_private_urls_are_refused_unless_allowed(app):
    with app.app_context():
        with pytest.raises(webhooks.WebhookRefused, match="loopback, private"):
            webhooks.add_webhook("http://127.0.0.1:9/x", "s")
        with pytest.raises(webhooks.WebhookRefused, match="loopback, private"):
            webhooks.add_webhook("http://169.254.169.254/latest", "s")
        with pytest.raises(webhooks.WebhookRefused, match="http"):
            webhooks.add_webhook("ftp://example.com/", "s", allow_private=True)


def test_a_signed_event_is_retried_with_the_same_id_until_acknowledged(app, tmp_path,
                                                                       receiver):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_SECONDS=0)
    with app.app_context():
        hook = webhooks.add_webhook(receiver.url, "top-secret", ["incident.opened"],
                                    allow_private=True)
    # Store "a", open 24x7, polled active at 00:00 (with "old", a week of data) and inactive
    # at 02:00: one open incident from the midpoint 01:00.
    feed(app, tmp_path, [("old", "2023-12-25 00:00", True), ("a", "2024-01-01 00:00", True),
                         ("a", "2024-01-01 02:00", False)])
    with app.app_context():
        for _ in range(3):
            assert webhooks.deliver_one(app.config)
        assert not webhooks.deliver_one(app.config)
        listed = webhooks.deliveries(hook["id"])
    assert len(receiver.received) == 3
    bodies = {body for _, body in receiver.received}
    assert len(bodies) == 1  # the same body every attempt
    headers, body = receiver.received[-1]
    event = json.loads(body)
    assert {h["Store-Monitor-Event-Id"] for h, _ in receiver.received} == {event["id"]}
    expected = hmac.new(b"top-secret", headers["Store-Monitor-Timestamp"].encode() + b"."
                        + body, hashlib.sha256).hexdigest()
    assert headers["Store-Monitor-Signature"] == f"v1={expected}"
    assert event["type"] == "incident.opened"
    assert {k: v for k, v in event["incident"].items() if k != "id"} == {
        "store_id": "a", "start": "2024-01-01T01:00:00Z", "end": None, "minutes": 60.0,
        "state": "open"}
    assert [d["state"] for d in listed] == ["delivered"]
    assert [a["status_code"] for a in listed[0]["attempts"]] == [500, 500, 204]
