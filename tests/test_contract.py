"""The API against its own OpenAPI document: Schemathesis generates requests from
/openapi.json and sends them to a real `run.py` server.

Checks: no 5xx, every status code and content type declared, every JSON body and declared
header valid against its schema, and more (`--checks all`), except "positive data
acceptance": input of the right shape that the data refuses (a CSV without the required
columns, an `as_of` before the first poll) is a 400 by design. The run's summary is printed
even when the test passes, so that CI's log shows it.
"""

import subprocess
import sys

import pytest
from conftest import BUNDLED_DATA

pytestmark = pytest.mark.e2e

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli", "run"]


def test_the_api_keeps_its_openapi_contract(server_factory, database_url, tmp_path, capsys):
    # The bundled data is loaded, so triggered reports complete and stateful runs
    # (trigger, then poll through the document's links) see every state.
    server = server_factory(DATABASE_URL=database_url,
                            STORE_DATA=str(BUNDLED_DATA)).start(timeout=120)
    run = subprocess.run(
        [*SCHEMATHESIS, f"{server.url}/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--seed", "2023",
         "--max-examples", "50", "--workers", "1", "--request-timeout", "30"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)  # its cache goes there
    with capsys.disabled():
        print("\n--- schemathesis against", server.url, "---")
        print(run.stdout[-6000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "Traceback" not in server.log()
