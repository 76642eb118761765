"""Web: the dashboard's pages (`pages`), their templates and static files.

May import: every package below it; not `app.api` or `app.cli`.
"""
