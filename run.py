"""Start Store Monitor in one process: load `STORE_DATA` once, then serve with waitress.

    python run.py            # http://127.0.0.1:5000 unless HOST / PORT say otherwise
"""

import logging

from waitress import serve

from wsgi import app

log = logging.getLogger("store_monitor")


def main():
    host, port = app.config["HOST"], app.config["PORT"]
    log.info("serving on http://%s:%s", host, port)
    serve(app, host=host, port=port, threads=8)


if __name__ == "__main__":
    main()
