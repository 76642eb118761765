"""How a SQLite server behaves while `flask ingest` holds the data file's write lock.

Loads DATA once into a fresh SQLite file, starts `run.py` on it, then runs `flask ingest
DATA` again in another process (every row a duplicate, but the ingest still writes them all
in one transaction) and meanwhile triggers a report every 0.25 s and polls the last ones.
Prints trigger and poll latencies and how the reports ended. Loopback only; bounded by the
ingest's duration plus `--settle` seconds.

    python -m bench.ingest_contention --data bench-cache/polls-14000x8 --database /tmp/c.sqlite3
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.servers import PROJECT_DIR, Server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="zip, folder or CSV to ingest")
    parser.add_argument("--database", required=True, help="SQLite file to create (replaced)")
    parser.add_argument("--one-file", action="store_true",
                        help="keep the report queue in the data file (the setup before the "
                             "queue had its own file)")
    parser.add_argument("--settle", type=float, default=300,
                        help="seconds to wait for the reports after the ingest")
    args = parser.parse_args()
    database = Path(args.database).resolve()
    queue = database.with_name(f"{database.stem}-queue{database.suffix}")
    for path in (database, queue):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    settings = {"DATABASE_URL": f"sqlite:///{database}", "STORE_DATA": "",
                # Unset, the queue is the default: `queue` beside the data file.
                "QUEUE_DATABASE_URL": f"sqlite:///{database}" if args.one_file else ""}
    env = {**os.environ, **settings}
    flask = [sys.executable, "-m", "flask", "--app", "app"]

    began = time.monotonic()
    subprocess.run([*flask, "ingest", args.data], cwd=PROJECT_DIR, env=env, check=True,
                   capture_output=True)
    print(f"first ingest: {time.monotonic() - began:.1f} s")

    server = Server(database.parent, **settings)
    try:
        server.start(timeout=120)
        _measure(server.url, [*flask, "ingest", args.data], env, args.settle)
    finally:
        server.stop(30)


def _measure(url, ingest_command, env, settle):
    ingest = subprocess.Popen(ingest_command, cwd=PROJECT_DIR, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    began = time.monotonic()
    triggers, polls, ids, codes = [], [], [], {}
    with requests.Session() as http:
        while ingest.poll() is None:
            start = time.monotonic()
            response = http.post(f"{url}/trigger_report", timeout=120)
            triggers.append(time.monotonic() - start)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
            if response.status_code == 202:
                ids.append(response.json()["report_id"])
            for report_id in ids[-3:]:
                start = time.monotonic()
                http.get(f"{url}/get_report", params={"report_id": report_id}, timeout=120)
                polls.append(time.monotonic() - start)
            time.sleep(0.25)
        print(f"second ingest, server running: {time.monotonic() - began:.1f} s "
              f"(exit {ingest.returncode})")
        print(f"triggers: {len(triggers)}, answers {codes}, median "
              f"{statistics.median(triggers):.3f} s, max {max(triggers):.3f} s")
        polls.sort()
        print(f"polls: {len(polls)}, median {statistics.median(polls):.3f} s, "
              f"max {polls[-1]:.3f} s")
        ended = {}
        deadline = time.monotonic() + settle
        for report_id in ids:
            while True:
                status = http.get(f"{url}/get_report", params={"report_id": report_id},
                                  timeout=120).headers.get("X-Report-Status")
                if status != "Running" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            ended[status] = ended.get(status, 0) + 1
        print(f"reports triggered during the ingest, {settle:.0f} s after it: {ended}")


if __name__ == "__main__":
    main()
