"""The command line as a user meets it (issue 18): mistakes are one line and exit status 1,
one summary line per command with its time, the HTTP API's rules (already loaded files
are skipped; as_of), our own words in `flask --help`, and a help that imports nothing
heavy. Each command runs in a real process, as a user starts it."""

import importlib
import os
import re
import subprocess
import sys

import pytest
from conftest import BUNDLED_DATA, GOLDEN_DIR, PROJECT_DIR, TEST_DATABASE

from app import cli

SUMMARY_TIME = re.compile(r" in \d+\.\d\d s$")


def run(*args, database_url=None, timeout=120, **env):
    """`args` in a process of its own (in the project folder), its settings from `env`."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "STORE_DATA", "LOG_LEVEL")}
    if database_url:
        environment["DATABASE_URL"] = database_url
    environment.update(env)
    return subprocess.run([str(a) for a in args], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=timeout, env=environment)


def flask(*args, **kwargs):
    return run(sys.executable, "-m", "flask", "--app", "app", *args, **kwargs)


def one_line_error(result):
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_help_is_ours_and_imports_nothing_heavy():
    result = flask("--help", PYTHONPROFILEIMPORTTIME="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith(cli.ABOUT.splitlines()[-1].split()[-1])
    assert "Store Monitor: uptime and downtime of stores" in result.stdout
    for name in ("ingest", "report", "keys", "db"):
        assert re.search(rf"^  {name} +\S", result.stdout, re.M), name
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "flask" in imported  # the check reads what it means to read
    # The app's own heavy dependencies wait for a command that needs them. (APIFlask's
    # `flask spec` plugin, which Flask loads for every help, imports marshmallow and
    # SQLAlchemy itself.)
    assert not imported & {"pandas", "pyarrow", "numpy", "app.api", "app.reports",
                           "app.ingest", "app.engine", "prometheus_client", "waitress"}


def test_the_help_list_names_each_command_as_its_own_help_does():
    for name, (module, attribute, short) in cli.COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert command.get_short_help_str(limit=200) == short, name


def test_unreachable_database_is_one_line(tmp_path):
    result = flask("ingest", GOLDEN_DIR / "a_spec_example",
                   database_url="postgresql+psycopg://monitor:secret@127.0.0.1:1/nothing",
                   DATABASE_CONNECT_TIMEOUT="2")
    line = one_line_error(result)
    assert "cannot use the database postgresql+psycopg://monitor:***@127.0.0.1:1/nothing" \
        in line and "secret" not in line


def test_generate_refuses_a_bad_end_and_an_existing_file(tmp_path):
    out = tmp_path / "data.zip"
    generate = [sys.executable, "-m", "bench.generate", out, "--stores", "2", "--days", "1"]
    line = one_line_error(run(*generate, "--end", "tomorrow"))
    assert "--end 'tomorrow' is not an instant" in line
    assert not out.exists()
    first = run(*generate)
    assert first.returncode == 0 and out.exists(), first.stderr
    written = out.read_bytes()
    out.write_bytes(b"mine")
    assert "exists; --force replaces it" in one_line_error(run(*generate))
    assert out.read_bytes() == b"mine"
    assert run(*generate, "--force").returncode == 0 and out.read_bytes() == written


def test_ingest_twice_report_as_of_and_empty_report(database_url, tmp_path):
    empty = flask("report", "--out", "-", database_url=database_url)
    assert empty.returncode == 0
    assert empty.stdout.strip() == ("store_id,uptime_last_hour,uptime_last_day,"
                                    "uptime_last_week,downtime_last_hour,downtime_last_day,"
                                    "downtime_last_week")
    warning, summary = empty.stderr.strip().splitlines()
    assert warning.startswith("warning: no polls are loaded")
    assert summary.startswith("0 stores written to standard output") and \
        SUMMARY_TIME.search(summary)

    first = flask("ingest", BUNDLED_DATA, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""  # no log lines repeating the table
    head = first.stdout.splitlines()[0]
    assert head.startswith("ingest 1 of ") and SUMMARY_TIME.search(head)
    again = flask("ingest", BUNDLED_DATA, database_url=database_url)
    assert again.returncode == 0 and again.stderr == ""
    (line,) = again.stdout.strip().splitlines()
    assert line.startswith("already loaded as ingest 1: ") and "--force" in line
    assert re.search(r" skipped in \d+\.\d\d s ", line)
    forced = flask("ingest", BUNDLED_DATA, "--force", database_url=database_url)
    assert forced.stdout.startswith("ingest 2 of ")
    assert "store_status.csv                   54586           0       54586           0" \
        in forced.stdout

    # One CSV file whose name does not say what it holds: --kind, as the API's ?kind=.
    polls = tmp_path / "polls-2023-01-26.csv"
    polls.write_text("store_id,timestamp_utc,status\nlate,2023-01-24 10:00:00 UTC,active\n")
    unnamed = flask("ingest", polls, database_url=database_url)
    assert "not a zip archive, a folder or one of the input files" in one_line_error(unnamed)
    named = flask("ingest", polls, "--kind", "status", database_url=database_url)
    assert named.returncode == 0 and "(as status)" in named.stdout.splitlines()[0]

    out = tmp_path / "as-of.csv"
    as_of = flask("report", "--out", out, "--as-of", "2023-01-24T12:00:00Z",
                  database_url=database_url)
    assert as_of.returncode == 0, as_of.stderr
    (summary,) = as_of.stderr.strip().splitlines()  # the demo's zone warning: not printed
    assert summary.startswith(f"297 stores written to {out}, data as of "
                              "2023-01-24T12:00:00Z") and SUMMARY_TIME.search(summary)
    rows = dict(line.split(",", 1) for line in out.read_text().splitlines()[1:])
    assert "late" in rows
    too_early = flask("report", "--out", out, "--as-of", "2020-01-01",
                      database_url=database_url)
    assert "is before the first poll" in one_line_error(too_early)
    assert "is not an ISO 8601 instant" in one_line_error(
        flask("report", "--out", out, "--as-of", "yesterday", database_url=database_url))


@pytest.mark.skipif(TEST_DATABASE != "sqlite", reason="a SQLite file of its own")
def test_db_upgrade_says_what_it_did(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    first = flask("db", "upgrade", database_url=url)
    assert first.returncode == 0, first.stderr
    assert "Running upgrade  -> 63c117ff542e, initial schema" in first.stderr
    assert re.search(r"fresh\.sqlite3: schema at revision \w+$", first.stderr, re.M)
    again = flask("db", "upgrade", database_url=url)
    assert "Running upgrade" not in again.stderr and "schema at revision" in again.stderr


UNREACHABLE = "postgresql+psycopg://monitor:secret@127.0.0.1:1/nothing"


def no_traceback(result):
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("setting, value, said", [
    ("PORT", "abc", "setting PORT='abc' is not a whole number"),
    ("SESSION_HOURS", "twelve", "setting SESSION_HOURS='twelve' is not a number"),
    ("REPORT_RETENTION", "a week", "REPORT_RETENTION 'a week': expected a number of reports"),
])
def test_a_mistyped_setting_is_one_line_for_commands_and_servers(setting, value, said,
                                                                   tmp_path):
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    for result in (flask("report", "--out", tmp_path / "r.csv", database_url=database,
                         **{setting: value}),
                   run(sys.executable, "run.py", database_url=database, STORE_DATA="",
                       **{setting: value})):
        lines = no_traceback(result)
        assert len(lines) == 1 and lines[0].startswith(said), lines


def test_an_unreachable_database_at_start_and_at_upgrade_says_so_without_a_traceback():
    upgrade = flask("db", "upgrade", database_url=UNREACHABLE, DATABASE_CONNECT_TIMEOUT="2")
    server = run(sys.executable, "run.py", database_url=UNREACHABLE, STORE_DATA="",
                 DATABASE_CONNECT_TIMEOUT="2")
    for result in (upgrade, server):
        said = no_traceback(result)[-1]
        assert "cannot use the database postgresql+psycopg://monitor:***@127.0.0.1:1/" \
               "nothing: connection failed" in said, said
        assert "secret" not in result.stderr
