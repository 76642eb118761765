"""Storage: where the data and the report queue live, and how they are read back.

Owns the engine binding and its SQLite/PostgreSQL differences (`database`), the tables
(`models`), consistent snapshots of the data and the columnar copy that makes them cheap
(`snapshot`, `columnar`), the orders polls are kept in and the copy's polls in parts
(`poll_order`, `poll_parts`), Arrow columns as numpy arrays (`arrow_arrays`), one store's
rows (`store_snapshot`), and telling a database outage from a bug (`outage`, `retry`).

May import: `app.engine`, `app.config`, `app.extensions`.
"""
