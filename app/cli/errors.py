"""No traceback reaches a user of the command line: what went wrong in one line on standard
error, and exit status 1."""

import functools
import logging
import os
import sys

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
            result = command(*args, **kwargs)
        except click.exceptions.ClickException as exc:
            _end_process(exc.exit_code, exc)
            raise
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # anything else: one line, not a traceback
            log.debug("command failed", exc_info=True)
            failure = click.ClickException(describe(exc))
            _end_process(failure.exit_code, failure)
            raise failure from None
        _end_process(0)
        return result
    return explained


def _end_process(status, failure=None):
    """In a `flask` process (not a test's in-process runner), end it here once the command
    is done: output flushed, database connections closed, then `os._exit(status)`.

    The interpreter's own shutdown is skipped on purpose. Arrow keeps native threads (its
    CPU and I/O pools, jemalloc's background thread) that have called into Python; one
    that touches Python while the interpreter finalizes is ended by CPython with
    `pthread_exit`, which a C++ thread cannot survive: "terminate called without an active
    exception", status 134, after a command that had succeeded (about 1 run in 25 of
    `flask ingest` on a busy 2-CPU machine). Nothing is left to do at that point: every
    write was committed, and the output is flushed here.
    """
    if not _own_process():
        return  # a test's CliRunner: the process is not ours to end
    if failure is not None:
        failure.show()
    try:
        from app.extensions import db

        for engine in db.engines.values():
            engine.dispose()
    except Exception:  # no app context, or a connection already gone: nothing to close
        pass
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def quiet_log():
    """A command prints what it did itself (one summary line with its time): the service's
    log lines would repeat it, so in a `flask` process they are shown only when LOG_LEVEL
    is set. (A test's in-process runner keeps its logging as it is.)"""
    if not os.environ.get("LOG_LEVEL") and _own_process():
        logging.getLogger("app").setLevel(logging.CRITICAL + 1)


def _own_process():
    """True in a `flask` process, False under a test's CliRunner (or outside Click)."""
    context = click.get_current_context(silent=True)
    if context is None:
        return False
    from flask.cli import FlaskGroup

    return isinstance(context.find_root().command, FlaskGroup)


def describe(exc):
    """One line about `exc`: for the database, which one and why (never its password)."""
    import sqlalchemy.exc

    if isinstance(exc, (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.OperationalError)):
        from app.storage.outage import unusable_database

        return unusable_database(exc, _database_url())
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__


def _database_url():
    from flask import current_app

    try:
        return current_app.config["SQLALCHEMY_DATABASE_URI"]
    except Exception:  # no app: the line names no database
        return None
