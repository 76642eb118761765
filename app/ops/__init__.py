"""Ops: running the service.

Owns the probes (`health`: `/healthz`, `/readyz`), Prometheus metrics (`metrics`), the work
each serving process does at start (`startup`) and run.py's serving processes
(`supervisor`).

May import: `app.auth`, `app.reports` and the packages below them.
"""
