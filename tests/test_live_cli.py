"""`flask webhooks add|list|remove` and what `flask ingest` says of webhook deliveries,
through Click's runner on a fresh database each."""

from test_cli import flask
from test_live_state import feed


def test_add_list_remove(runner, app):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    assert flask(runner, "webhooks", "list").output == (
        "no webhooks: 'flask webhooks add URL --secret SECRET' adds one\n")
    added = flask(runner, "webhooks", "add", "http://127.0.0.1:8080/hook", "--secret", "s3",
                  "--events", "incident.opened,incident.closed", "--min-minutes", "90")
    assert added.output == ("webhook 1 added: http://127.0.0.1:8080/hook (incident.opened, "
                            "incident.closed; min minutes 90)\n")
    flask(runner, "webhooks", "add", "http://127.0.0.1:8081/", "--secret", "x",
          "--events", "store.silent", "--events", "incident.removed")
    lines = flask(runner, "webhooks", "list").output.splitlines()
    assert lines[0].split() == ["id", "min", "minutes", "created", "(UTC)", "url", "events"]
    assert [line.split()[:2] + line.split()[-2:] for line in lines[1:]] == [
        ["1", "90", "http://127.0.0.1:8080/hook", "incident.opened,incident.closed"],
        ["2", "0", "http://127.0.0.1:8081/", "incident.removed,store.silent"]]
    assert "s3" not in "\n".join(lines)  # never the secret
    assert flask(runner, "webhooks", "remove", "1").output == "webhook 1 removed\n"
    assert [line.split()[0] for line in
            flask(runner, "webhooks", "list").output.splitlines()[1:]] == ["2"]


def test_mistakes_are_one_line_and_exit_1(runner, app):
    refused = flask(runner, "webhooks", "add", "http://127.0.0.1:8080/", "--secret", "s",
                    exit_code=1)
    assert refused.output == ("Error: url: 127.0.0.1 resolves to a loopback, private or "
                              "link-local address (WEBHOOK_ALLOW_PRIVATE=1 allows it)\n")
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    unknown = flask(runner, "webhooks", "add", "http://127.0.0.1:8080/", "--secret", "s",
                    "--events", "incident.opened,store.down", exit_code=1)
    assert unknown.output.startswith("Error: events: unknown store.down (known: ")
    assert len(unknown.output.splitlines()) == 1
    scheme = flask(runner, "webhooks", "add", "ftp://example.com/", "--secret", "s",
                   exit_code=1)
    assert scheme.output == "Error: url: an http:// or https:// URL with a host is required\n"
    missing = flask(runner, "webhooks", "remove", "7", exit_code=1)
    assert missing.output == "Error: no webhook with id 7\n"
    assert flask(runner, "webhooks", "remove", "x", exit_code=2).output.count("\n") <= 4


def test_ingest_says_deliveries_wait_for_a_server(runner, app, tmp_path):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    flask(runner, "webhooks", "add", "http://127.0.0.1:9/hook", "--secret", "s")
    folder = tmp_path / "down"
    folder.mkdir()
    # Store "a" (open 24x7) active at 00:00 then inactive at 02:00: one incident opens
    # (from 01:00), one delivery for the one webhook.
    (folder / "store_status.csv").write_text(
        "store_id,timestamp_utc,status\na,2024-01-01 00:00:00 UTC,active\n"
        "a,2024-01-01 02:00:00 UTC,inactive\n")
    output = flask(runner, "ingest", folder).output
    assert output.splitlines()[-1] == (
        "webhook deliveries pending: 1 (a serving process, run.py or gunicorn, sends them "
        "within seconds, now or once it starts)")
    # Nothing pending: nothing said.
    feed(app, tmp_path, [("a", "2024-01-01 03:00", False)])  # the incident goes on
    flask(runner, "webhooks", "remove", "1")
    folder2 = tmp_path / "more"
    folder2.mkdir()
    (folder2 / "store_status.csv").write_text(
        "store_id,timestamp_utc,status\na,2024-01-01 04:00:00 UTC,active\n")
    assert "webhook" not in flask(runner, "ingest", folder2).output
