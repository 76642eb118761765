"""Downloads of a Complete report: kept ready per process, an ETag, gzip when accepted."""

import gzip
import socket
from urllib.parse import urlsplit

import pytest
import requests
from conftest import GOLDEN_DIR

from app.ingest.load import ingest
from app.reports import downloads
from app.storage.database import queue_engine
from app.storage.models import ReportCsv

SPEC_CASE = GOLDEN_DIR / "gen_300_real_hours"
EXPECTED = (SPEC_CASE / "expected.csv").read_bytes()


@pytest.fixture
def report_id(app, reports):
    with app.app_context():
        ingest(SPEC_CASE)
    report_id = reports.trigger()
    assert reports.wait(report_id).headers["X-Report-Status"] == "Complete"
    return report_id


def test_csv_carries_an_etag_and_a_matching_if_none_match_answers_304(client, report_id):
    first = client.get(f"/get_report?report_id={report_id}")
    assert first.status_code == 200 and first.get_data() == EXPECTED
    assert first.headers["ETag"] == f'"{report_id}"'
    assert int(first.headers["Content-Length"]) == len(EXPECTED)
    assert "Content-Encoding" not in first.headers

    again = client.get(f"/get_report?report_id={report_id}",
                       headers={"If-None-Match": f'"{report_id}"'})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == f'"{report_id}"'
    assert again.headers["X-Report-Status"] == "Complete"
    # Any of several tags, a weak tag, and "*" match too; another report's tag does not.
    for header in (f'"other", "{report_id}"', f'W/"{report_id}"', "*"):
        assert client.get(f"/get_report?report_id={report_id}",
                          headers={"If-None-Match": header}).status_code == 304
    other = client.get(f"/get_report?report_id={report_id}",
                       headers={"If-None-Match": '"00000000-0000-4000-8000-000000000000"'})
    assert other.status_code == 200 and other.get_data() == EXPECTED


def test_gzip_for_clients_that_accept_it(client, report_id):
    plain = client.get(f"/get_report?report_id={report_id}")
    zipped = client.get(f"/get_report?report_id={report_id}",
                        headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.mimetype == "text/csv"
    body = zipped.get_data()
    assert int(zipped.headers["Content-Length"]) == len(body) < len(EXPECTED) / 2
    assert gzip.decompress(body) == EXPECTED
    assert "Accept-Encoding" in zipped.headers["Vary"]
    # The gzipped answer is another representation: its own tag, each matching only itself.
    assert zipped.headers["ETag"] == f'"{report_id}-gzip"' != plain.headers["ETag"]
    assert client.get(f"/get_report?report_id={report_id}",
                      headers={"Accept-Encoding": "gzip",
                               "If-None-Match": zipped.headers["ETag"]}).status_code == 304
    assert client.get(f"/get_report?report_id={report_id}",
                      headers={"If-None-Match": zipped.headers["ETag"]}).get_data() == EXPECTED
    # gzip refused explicitly: the plain CSV.
    refused = client.get(f"/get_report?report_id={report_id}",
                         headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.get_data() == EXPECTED


def test_the_csv_is_read_from_the_database_once_per_process(app, client, report_id):
    assert client.get(f"/get_report?report_id={report_id}").get_data() == EXPECTED
    # Changed behind the process's back (a finished report never changes): the kept copy
    # is what this process sends.
    with app.app_context(), queue_engine().begin() as conn:
        conn.execute(ReportCsv.__table__.update().where(ReportCsv.report_id == report_id)
                     .values(csv="changed\n"))
    assert client.get(f"/get_report?report_id={report_id}").get_data() == EXPECTED
    app.extensions["report_downloads"].clear()
    assert client.get(f"/get_report?report_id={report_id}").get_data() == b"changed\n"


def test_the_kept_downloads_are_bounded_in_bytes():
    kept = downloads.Downloads(max_bytes=100)
    for name in "abcd":
        kept.put(downloads.Download(name, b"x" * 40))
    assert [name for name in "abcd" if kept.get(name)] == ["c", "d"]
    # Reading one makes it the most recent: the other goes first.
    kept.get("c")
    kept.put(downloads.Download("e", b"x" * 40))
    assert [name for name in "cde" if kept.get(name)] == ["c", "e"]
    # One larger than the bound is still kept (it is being sent), alone.
    kept.put(downloads.Download("big", b"x" * 500))
    assert kept.get("big") is not None and kept.get("e") is None


def _raw_get(url, headers):
    """One HTTP/1.1 request on a socket: the status, the headers and the exact body bytes."""
    parts = urlsplit(url)
    lines = [f"GET {parts.path}?{parts.query} HTTP/1.1", f"Host: {parts.netloc}",
             "Connection: close", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall("\r\n".join(lines).encode())
        data = b""
        while chunk := conn.recv(1 << 16):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    found = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), found, body


@pytest.mark.e2e
def test_a_served_download_has_the_right_length_plain_and_gzipped(server_factory,
                                                                  database_url):
    server = server_factory(DATABASE_URL=database_url, STORE_DATA=str(SPEC_CASE)).start()
    report_id = requests.post(f"{server.url}/trigger_report", timeout=10).json()["report_id"]
    assert server.wait_for_report(report_id).content == EXPECTED
    url = f"{server.url}/get_report?report_id={report_id}"
    status, headers, body = _raw_get(url, {})
    assert status == 200 and body == EXPECTED
    assert int(headers["content-length"]) == len(EXPECTED)
    status, headers, body = _raw_get(url, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert int(headers["content-length"]) == len(body)
    assert gzip.decompress(body) == EXPECTED
    status, headers, body = _raw_get(url, {"Accept-Encoding": "gzip",
                                           "If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
