"""Start Store Monitor: load `STORE_DATA` once, then serve with waitress.

    python run.py            # http://127.0.0.1:5000 unless HOST / PORT say otherwise
"""

import logging

from dotenv import load_dotenv
from waitress import serve

load_dotenv()

from app import create_app  # noqa: E402  (the environment must be loaded first)
from app.startup import prepare  # noqa: E402

log = logging.getLogger("store_monitor")


def main():
    app = create_app()
    prepare(app)
    host, port = app.config["HOST"], app.config["PORT"]
    log.info("serving on http://%s:%s", host, port)
    serve(app, host=host, port=port, threads=8)


if __name__ == "__main__":
    main()
