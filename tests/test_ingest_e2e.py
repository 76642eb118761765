"""Uploads through a real `run.py` server: a CSV of a million rows is streamed (the
server's memory stays bounded), and a second upload during an ingest is refused with 409."""

import threading
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import requests

from app.ingest.uploads import received

pytestmark = pytest.mark.e2e

MILLION = 1_000_000


def million_polls(path):
    """A status CSV of 1,000 stores x 1,000 hourly polls; returns its size in bytes."""
    store = np.repeat(np.arange(1000), 1000)
    hour = np.tile(np.arange(1000), 1000)
    stamps = pd.Timestamp("2023-01-01") + pd.to_timedelta(hour, unit="h")
    pd.DataFrame({"store_id": store, "timestamp_utc": stamps.strftime("%Y-%m-%d %H:%M:%S UTC"),
                  "status": np.where(hour % 7 == 0, "inactive", "active")}).to_csv(
        path, index=False)
    return path.stat().st_size


def peak_rss_mb(pid):
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_upload_is_copied_to_disk_in_blocks_not_held_in_memory(app, tmp_path):
    body = tmp_path / "store_status.csv"
    size = million_polls(body)
    with open(body, "rb") as stream, app.test_request_context(
            "/api/v1/ingest", method="POST", input_stream=stream, content_type="text/csv",
            headers={"Content-Length": str(size)}) as context:
        tracemalloc.start()
        try:
            with received(context.request, 200, "status") as (path, _shown):
                copied = path.stat().st_size
                peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert copied == size > 30 << 20
    assert peak < 4 << 20, f"{peak / 2**20:.1f} MB traced while copying {size / 2**20:.0f} MB"


def test_million_row_csv_over_http_and_a_second_ingest_meanwhile(server_factory, database_url,
                                                                 tmp_path, capsys):
    big = tmp_path / "store_status.csv"
    size_mb = million_polls(big) / 2**20
    # One serving process: the one whose memory is read below.
    server = server_factory(DATABASE_URL=database_url, STORE_DATA="",
                            SERVER_PROCESSES="1").start()
    before_mb = peak_rss_mb(server.process.pid)

    answers = {}

    def upload_big():
        with open(big, "rb") as body:  # requests streams a file object
            answers["big"] = requests.post(f"{server.url}/api/v1/ingest", data=body,
                                           params={"kind": "status"},
                                           headers={"Content-Type": "text/csv"}, timeout=300)

    uploader = threading.Thread(target=upload_big)
    began = time.perf_counter()
    uploader.start()
    time.sleep(1.0)
    small = requests.post(f"{server.url}/api/v1/ingest", params={"kind": "timezone"},
                          data=b"store_id,timezone_str\n1,Asia/Tokyo\n",
                          headers={"Content-Type": "text/csv"}, timeout=300)
    big_still_running = uploader.is_alive()
    uploader.join(300)
    seconds = time.perf_counter() - began

    big_answer = answers["big"]
    assert big_answer.status_code == 201, big_answer.text
    counts = big_answer.json()["files"][0]
    assert (counts["read"], counts["loaded"], counts["rejected"]) == (MILLION, MILLION, 0)
    if big_still_running:  # the small one arrived during the big ingest: refused, not queued
        assert small.status_code == 409 and small.json()["message"].startswith("another ingest")
    else:
        assert small.status_code == 201
    data = requests.get(f"{server.url}/api/v1/data", timeout=10).json()
    assert data["polls"] == MILLION and data["stores_with_polls"] == 1000

    peak_mb = peak_rss_mb(server.process.pid)
    with capsys.disabled():
        print(f"\n1,000,000-row CSV ({size_mb:.0f} MB) over HTTP: {seconds:.1f} s; server peak "
              f"RSS {before_mb:.0f} MB before, {peak_mb:.0f} MB after")
    # The upload goes to disk (test above) and is parsed in blocks (parse.BLOCK_BYTES), a few in
    # flight whatever the size of the file (tests/test_parse.py). The whole ingest of a
    # million polls keeps within issue 21's budget: 500 MB at the peak for a process that
    # starts at about 180 (it took 240 more here: 250 before the parse of issue 21, whose
    # blocks were four times larger).
    assert peak_mb - before_mb < 320, (before_mb, peak_mb)
    assert "Traceback" not in server.log()
