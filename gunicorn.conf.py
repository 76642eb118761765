"""gunicorn's settings for `wsgi:app`, read from the working folder: the schema upgrade.

The master upgrades the schema once before it starts any worker, so workers starting
together never race to create tables (they did on SQLite with a separate
QUEUE_DATABASE_URL file: "table api_key already exists"). Other settings come from the
command line or GUNICORN_CMD_ARGS.
"""


def on_starting(server):
    from app import create_app
    from app.extensions import db
    from app.storage import database

    app = create_app()
    database.upgrade(app)
    with app.app_context():  # no connection of the master's may reach a forked worker
        for engine in db.engines.values():
            engine.dispose()
