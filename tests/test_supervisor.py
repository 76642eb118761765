"""app.ops.supervisor on its own, in a process of its own: children that cannot start end the
server with a non-zero status instead of being restarted forever."""

import subprocess
import sys
import time

from servers import PROJECT_DIR

from app.ops import supervisor

SCRIPT = """
import logging, sys
from app.ops.supervisor import supervise
logging.basicConfig(level=logging.INFO)

def serve(index):
    raise SystemExit(f"child {index} cannot start")

sys.exit(supervise(2, serve))
"""


def test_children_dying_at_start_end_the_server_with_status_1():
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PROJECT_DIR, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    # Each early exit but the last is replaced; the last ends the server (the other child
    # may have failed too by then, and is only stopped).
    assert done.stderr.count("starting another") == supervisor.MAX_EARLY_EXITS - 1
    assert done.stderr.count("cannot start") >= supervisor.MAX_EARLY_EXITS
    assert "giving up" in done.stderr
    # Before each restart after an early exit the parent waits, twice as long each time.
    pauses = sum(supervisor.RESTART_PAUSE_SECONDS * 2 ** n
                 for n in range(supervisor.MAX_EARLY_EXITS - 1))
    assert time.monotonic() - began >= pauses
