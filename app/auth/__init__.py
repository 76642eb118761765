"""Auth: who may call what, and how often.

Owns API keys (`keys`), the check before every request (`guard`), the dashboard's sign-in
with a key (`signin`) and rate limits (`ratelimit`).

May import: `app.reports`, `app.storage`, and the packages below them.
"""
