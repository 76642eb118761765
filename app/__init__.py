"""Store Monitor: uptime and downtime of stores within their business hours."""

import logging
import sys
from pathlib import Path

from app.config import Config


def create_app(test_config=None):
    """Build an app from `Config`, with `test_config` (a mapping) overriding it.

    `flask --help` gets a light app that only names the commands (`app.cli.listing_app`):
    so nothing heavy is imported at the top of this module.
    """
    from app import cli

    if test_config is None and cli.listing_only():
        return cli.listing_app(Config)

    from apiflask import APIFlask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app.api import openapi

    app = APIFlask(__name__, title=openapi.TITLE, version=openapi.VERSION,
                   docs_oauth2_redirect_path=None,
                   static_folder="web/static", template_folder="web/templates",
                   instance_relative_config=True)
    app.config.from_object(Config)
    if test_config:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.testing:
        _configure_logging(app)

    import app.live as live
    from app.api import data, errors, reports, trigger
    from app.api import live as live_api
    from app.auth import guard, ratelimit, signin
    from app.ops import health, metrics
    from app.reports import runner, state
    from app.storage import database
    from app.web import live as live_pages
    from app.web import pages

    database.init_app(app)
    state.init_app(app)
    runner.init_app(app)
    guard.init_app(app)  # before the limiter: limits count per key
    signin.init_app(app)
    ratelimit.init_app(app)
    errors.init_app(app)
    openapi.init_app(app)
    cli.init_app(app)
    metrics.init_app(app)
    live.init_app(app)
    app.register_blueprint(trigger.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(data.bp)
    app.register_blueprint(live_api.bp)
    app.register_blueprint(live_pages.bp)
    if app.config["TRUSTED_PROXIES"]:
        # Behind nginx (deploy/nginx.conf): the client's address from X-Forwarded-For.
        count = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    return app


def _configure_logging(app):
    """Send the package's log (every `app.*` logger) to standard error, standard output
    (`LOG_TO_STDOUT`) or a file (`LOG_FILE`).

    Only the package's logger gets the handler, not the root: the servers (waitress,
    gunicorn, werkzeug) keep their own logging, and a process that configured the root itself
    (as waitress does) does not print our lines twice.
    """
    if app.config["LOG_FILE"]:
        handler = logging.FileHandler(app.config["LOG_FILE"])
    elif app.config["LOG_TO_STDOUT"]:
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.StreamHandler(sys.stderr)
    # The process id tells apart the lines of run.py's or gunicorn's serving processes.
    handler.setFormatter(logging.Formatter(
        "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger(__name__)
    package.handlers[:] = [handler]
    package.setLevel(app.config["LOG_LEVEL"])
    package.propagate = False
