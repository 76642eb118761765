"""Cluster: reports computed on a Dask cluster, one task per range of stores.

Owns planning and gathering the tasks (`compute`), cutting stores into ranges of bounded
polls (`store_ranges`) and the exported PostgreSQL view every task reads (`shared_view`).
Dask is imported only when a report runs on a cluster.

May import: `app.storage`, `app.engine`, `app.config`.
"""
