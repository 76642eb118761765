"""The WSGI application, ready to serve: `gunicorn --workers 2 --threads 8 wsgi:app` (one
worker per CPU).

Every process that imports it runs the start-up work of `app.ops.startup.prepare`; the database
locks inside make that safe when several workers start together. The schema must be current
first: gunicorn's master upgrades it once, before it starts any worker (`on_starting` in
`gunicorn.conf.py`, which gunicorn reads from the working folder); under another server, run
`flask db upgrade` before starting it.
"""

from app import create_app  # app.config reads the environment and `.env`
from app.ops.startup import prepare

app = create_app()
prepare(app)
