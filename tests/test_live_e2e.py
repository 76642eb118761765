"""Alerts end to end (issue 20): a real server (`run.py`, two serving processes) fed a week
of polls hour by hour over HTTP, a webhook receiver started here, and the server killed
with SIGKILL in the middle of an ingest, then started again.

Checked: every delivery's signature; no event lost (every event written is received) and
none received twice with different contents; a receiver failing its first answers gets
the same events again; the incidents the events tell of, folded in order, are the kept
incidents, which are a full recomputation from the polls.
"""

import hashlib
import hmac
import json
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import requests
import sqlalchemy as sa
from conftest import close_app, make_app
from servers import child_pids
from test_live_state import full_recomputation, kept
from test_live_webhooks import Receiver

from bench.generate import generate_dataset

HOUR_US = 3_600_000_000
SECRET = "e2e-secret"
KILL_AT_HOUR = 80


def csv_of(frame, columns, header):
    return (header + "\n" + frame[columns].to_csv(header=False, index=False)).encode()


def week_of_hours(stores=12, seed=6):
    """The hours and zones CSV, and 168 status CSVs of one hour each (with, every 7 hours,
    the poll of two hours before sent again with the other status: a late change)."""
    data = generate_dataset(stores, 7, seed=seed)
    hours = data.hours.assign(
        start=pd.to_timedelta(data.hours["start_s"], unit="s").astype(str).str[-8:],
        end=pd.to_timedelta(data.hours["end_s"], unit="s").astype(str).str[-8:])
    hours_csv = csv_of(hours, ["store_id", "day_of_week", "start", "end"],
                       "store_id,dayOfWeek,start_time_local,end_time_local")
    zones_csv = csv_of(data.timezones, ["store_id", "timezone_str"], "store_id,timezone_str")
    status = data.status.sort_values("timestamp_us", ignore_index=True)
    status["text"] = pd.to_datetime(status["timestamp_us"], unit="us").dt.strftime(
        "%Y-%m-%d %H:%M:%S.%f UTC")
    status["state"] = np.where(status["active"], "active", "inactive")
    first = int(status["timestamp_us"].min())
    hour = (status["timestamp_us"] - first) // HOUR_US
    files = []
    for number in range(int(hour.max()) + 1):
        part = status[hour == number]
        if number % 7 == 0 and number >= 2:
            late = status[hour == number - 2].head(1).assign(
                state=lambda f: np.where(f["state"] == "active", "inactive", "active"))
            part = pd.concat([part, late])
        files.append(csv_of(part, ["store_id", "text", "state"],
                            "store_id,timestamp_utc,status"))
    return hours_csv, zones_csv, files


def post(server, kind, body):
    answer = requests.post(f"{server.url}/api/v1/ingest?kind={kind}", data=body,
                           headers={"Content-Type": "text/csv"}, timeout=60)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def kill(server):
    """SIGKILL the server and its serving processes, as a crash or an OOM kill would."""
    pids = [server.process.pid, *child_pids(server.process.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.process.wait(10)


def test_a_week_hour_by_hour_with_a_crash(server_factory, database_url):
    hours_csv, zones_csv, files = week_of_hours()
    receiver = Receiver(failures=3)
    env = {"DATABASE_URL": database_url, "STORE_DATA": "", "SERVER_PROCESSES": "2",
           "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_RETRY_SECONDS": "0.2"}
    engine = sa.create_engine(database_url)
    app = None
    try:
        server = server_factory(**env).start()
        made = requests.post(f"{server.url}/api/v1/webhooks", json={
            "url": receiver.url, "secret": SECRET}, timeout=10)
        assert made.status_code == 201, made.text
        post(server, "hours", hours_csv)
        post(server, "timezone", zones_csv)
        for number, body in enumerate(files):
            if number == KILL_AT_HOUR:
                # In the middle of this hour's ingest: it commits or not; sent again after.
                sender = threading.Thread(target=lambda: _try_post(server, body))
                sender.start()
                time.sleep(0.03)
                kill(server)
                sender.join()
                server = server_factory(**env).start()
            post(server, "status", body)

        # Every delivery done (the retries of the first failures included).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                waiting = conn.execute(sa.text(
                    "SELECT count(*) FROM webhook_delivery WHERE state <> 'delivered'")).scalar()
            if waiting == 0:
                break
            time.sleep(0.2)
        assert waiting == 0, f"{waiting} deliveries not delivered"
        with engine.connect() as conn:
            written = dict(conn.execute(sa.text("SELECT id, body FROM webhook_event")).all())

        received = {}
        for headers, body in receiver.received:
            expected = hmac.new(SECRET.encode(), headers["Store-Monitor-Timestamp"].encode()
                                + b"." + body, hashlib.sha256).hexdigest()
            assert headers["Store-Monitor-Signature"] == f"v1={expected}"
            event = json.loads(body)
            assert headers["Store-Monitor-Event-Id"] == event["id"]
            received.setdefault(event["id"], set()).add(body)
        # The first three answers were 500: those events came again, with the same body.
        assert len(receiver.received) >= len(written) + 3
        assert all(len(bodies) == 1 for bodies in received.values()), "different contents"
        assert set(received) == set(written), "events lost or unknown"
        assert {i: b.decode() for i, (b,) in received.items()} == written

        # The incidents the events tell of, in the order they were written, are the kept
        # ones, which are a full recomputation.
        events = sorted((json.loads(b) for b in written.values()),
                        key=lambda e: (e["created_at"], e["type"] != "incident.removed"))
        told = {}
        for event in events:
            if "incident" not in event:
                assert event["type"] == "store.silent"
                continue
            incident = event["incident"]
            if event["type"] == "incident.removed":
                told.pop(incident["id"], None)
            else:
                told[incident["id"]] = (incident["store_id"], incident["start"],
                                        incident["end"])
        types = {e["type"] for e in events}
        assert {"incident.opened", "incident.closed", "incident.updated",
                "incident.removed"} <= types
        app = make_app(database_url, upgrade=False)
        full, _states, _data = full_recomputation(app)
        assert kept(app) == full
        assert sorted(told.values()) == sorted(
            (store, _iso(start), None if end is None else _iso(end)) for store, start, end in full)
    finally:
        receiver.close()
        engine.dispose()
        if app is not None:
            close_app(app)


def _try_post(server, body):
    try:
        requests.post(f"{server.url}/api/v1/ingest?kind=status", data=body,
                      headers={"Content-Type": "text/csv"}, timeout=30)
    except requests.RequestException:
        pass  # the server was killed under it


def _iso(us):
    from app.engine.instants import iso_instant

    return iso_instant(us)
