"""The WSGI application, ready to serve: `gunicorn -w 4 --threads 4 wsgi:app`.

Every process that imports it runs the start-up work of `app.startup.prepare`; the database
locks inside make that safe when several workers start together.
"""

from dotenv import load_dotenv

load_dotenv()

from app import create_app  # noqa: E402  (the environment must be loaded first)
from app.startup import prepare  # noqa: E402

app = create_app()
prepare(app)
