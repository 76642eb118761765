"""One PostgreSQL view of the data, shared by the pieces of a report computed on a cluster.

A report job exports its transaction's view (`pg_export_snapshot()`) and keeps it open;
each task joins it (`SET TRANSACTION SNAPSHOT`) and reads only its range of stores. The
pieces together then see exactly what one snapshot would: an ingest committed meanwhile is
in none of them. Everything is read through ADBC, as Arrow columns, like `snapshot`.
"""

import re
from contextlib import closing

import adbc_driver_postgresql.dbapi as adbc_postgresql
import sqlalchemy as sa

from app.storage.snapshot import QUERIES, to_snapshot

# What pg_export_snapshot() returns, such as 00000003-0000001B-1.
_VIEW_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")


def connect_postgresql(url):
    """An ADBC connection to the PostgreSQL database at `url` (a SQLAlchemy URL or text)."""
    uri = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return adbc_postgresql.connect(uri)


class SharedView:
    """An exported view of the data, held open until `close`.

    `id` is what `read_store_range` joins; `polls_per_store` has ``store_pk``, ``polls``
    and ``latest_us`` (the latest poll) of each store with polls, by `store_pk`, as the view
    sees them.
    """

    def __init__(self, url):
        self._conn = connect_postgresql(url)
        try:
            with closing(self._conn.cursor()) as cursor:
                # The driver has opened a transaction; this must be its first statement.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cursor.execute("SELECT pg_export_snapshot()")
                self.id = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT store_pk, count(*) AS polls, max(timestamp_us) AS latest_us "
                    "FROM store_status GROUP BY store_pk ORDER BY store_pk")
                self.polls_per_store = cursor.fetch_arrow_table().to_pandas()
        except BaseException:
            self._conn.close()
            raise

    def close(self):
        try:
            self._conn.rollback()
        finally:
            self._conn.close()


# The polls are keyed by (hour, store, instant): naming every hour from the first poll's to
# the latest one's makes a range of stores one step down the key per hour, not a scan.
_EVERY_HOUR = (" AND hour = ANY(ARRAY(SELECT generate_series("
               "(SELECT min(hour) FROM store_status), (SELECT max(hour) FROM store_status))))")


def read_store_range(connection, first_pk, last_pk, view_id):
    """The `Snapshot` of the stores whose `store.id` lies in ``[first_pk, last_pk]``, as the
    view `view_id` sees them, through an ADBC `connection` (left without a transaction)."""
    if not _VIEW_ID.fullmatch(view_id):
        raise ValueError(f"view_id: not a PostgreSQL snapshot id: {view_id!r}")
    tables = {}
    with closing(connection.cursor()) as cursor:
        try:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{view_id}'")
            for name, (table, columns) in QUERIES.items():
                # The first column of every table is its store key.
                cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {columns[0]} "
                               f"BETWEEN {int(first_pk)} AND {int(last_pk)}"
                               + (_EVERY_HOUR if name == "polls" else ""))
                tables[name] = cursor.fetch_arrow_table()
        finally:
            connection.rollback()
    return to_snapshot(None, tables)
