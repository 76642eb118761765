"""No traceback reaches a user of the command line: what went wrong in one line on standard
error, and exit status 1."""

import functools
import logging
import os

import click

log = logging.getLogger(__name__)


def one_line_errors(command):
    """Run `command`; a failure it did not explain itself (the database unreachable, a
    file that cannot be written, anything else) becomes one line and exit status 1. The
    traceback goes to the log at debug level."""
    @functools.wraps(command)
    def explained(*args, **kwargs):
        quiet_log()
        try:
            return command(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # anything else: one line, not a traceback
            log.debug("command failed", exc_info=True)
            raise click.ClickException(describe(exc)) from None
    return explained


def quiet_log():
    """A command prints what it did itself (one summary line with its time): the service's
    log lines would repeat it, so they are shown only when LOG_LEVEL is set."""
    if not os.environ.get("LOG_LEVEL"):
        logging.getLogger("app").setLevel(logging.CRITICAL + 1)


def describe(exc):
    """One line about `exc`: for the database, which one and why (never its password)."""
    import sqlalchemy.exc

    if isinstance(exc, (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.OperationalError)):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = reason[0] if reason else type(exc).__name__
        return f"cannot use the database {_database()}: {reason}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__


def _database():
    from flask import current_app
    from sqlalchemy.engine import make_url

    try:
        url = current_app.config["SQLALCHEMY_DATABASE_URI"]
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(DATABASE_URL)"
