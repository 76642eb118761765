"""`flask` commands: a module per capability, each calling the same functions as the API.

- `flask ingest PATH` (`app.cli.data`): load a zip archive, a folder or a CSV file;
- `flask report --out FILE` (`app.cli.reports`): compute a report and write its CSV;
- `flask keys create|list|revoke` (`app.cli.keys`): API keys;
- `flask data delete` (`app.cli.cleanup`): remove polls by store and time range.

The data generator and the benchmarks are development tools in bench/ (`python -m
bench.generate`, `python -m bench.report`), apart from the service.

`flask --help` (and `flask` alone) only lists the commands: building the whole app for that
would import pandas, pyarrow, APIFlask and the rest (2 s). So while the command line is only
listing, the factory asks `listing_only()` and gets `listing_app()`: a plain Flask app whose
commands are named with their short help (`COMMANDS`), importing nothing else.
"""

import sys

import click

# Name -> (module, attribute, short help as `flask --help` shows it). A test checks that
# each short help is the real command's.
COMMANDS = {
    "ingest": ("app.cli.data", "ingest_command",
               "Load a zip archive, a folder or one CSV file of store data."),
    "report": ("app.cli.reports", "report_command",
               "Compute a report of the loaded data and write its CSV."),
    "keys": ("app.cli.keys", "keys_command", "Create, list and revoke API keys."),
    "data": ("app.cli.cleanup", "data_command", "Manage the loaded data."),
    "webhooks": ("app.cli.webhooks", "webhooks_command", "Add, list and remove webhooks."),
}
# Listed too, registered by Flask-Migrate itself (`app.storage.database`).
LISTED = {"db": "Perform database migrations."}

ABOUT = """Store Monitor: uptime and downtime of stores within their business hours.

\b
  flask ingest PATH            load store data (zip, folder or CSV)
  flask report --out FILE      compute a report and write its CSV
  flask keys create NAME       make an API key
  flask db upgrade             apply the database migrations
  python run.py                serve the dashboard, the API and /docs

Settings come from the environment and .env (DATABASE_URL, ...): see docs/cli.md and
docs/configuration.md. 'flask COMMAND --help' describes a command."""

# Options of the `flask` command itself that take a value (the rest are flags).
_VALUED_OPTIONS = {"-A", "--app", "-e", "--env-file"}


def init_app(app):
    import importlib

    from app.cli.errors import one_line_errors

    for module, attribute, _short in COMMANDS.values():
        command = getattr(importlib.import_module(module), attribute)
        _explain_failures(command, one_line_errors)
        app.cli.add_command(command)
    _describe_the_command_line()


def _explain_failures(command, wrap):
    """Every command of a group too: failures in one line (`app.cli.errors`)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _explain_failures(sub, wrap)
    elif command.callback is not None and not getattr(command.callback, "explained", False):
        command.callback = wrap(command.callback)
        command.callback.explained = True


def listing_only(argv=None):
    """True when this process is the `flask` command and is only listing its commands
    (`flask`, `flask --help`), with no command to run."""
    context = click.get_current_context(silent=True)
    if context is None or context.parent is not None:
        return False
    from flask.cli import FlaskGroup

    if not isinstance(context.command, FlaskGroup):
        return False
    args = list(sys.argv[1:] if argv is None else argv)
    while args:
        word = args.pop(0)
        if word in _VALUED_OPTIONS:
            args = args[1:]
        elif not word.startswith("-"):
            return False  # a command to run: the whole app
    return True


def listing_app(config):
    """A plain Flask app that only names our commands, for `flask --help`."""
    from flask import Flask

    app = Flask(__name__.split(".")[0])
    app.config.from_object(config)
    shorts = {**{name: short for name, (_m, _a, short) in COMMANDS.items()}, **LISTED}
    for name, short in shorts.items():
        app.cli.add_command(click.Command(name, short_help=short, help=short))
    _describe_the_command_line()
    return app


def _describe_the_command_line():
    """Our own words after `flask --help`'s generic text (its epilog: printed after the
    commands, which are listed once the app is loaded)."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.find_root().command.epilog = ABOUT
