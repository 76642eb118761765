"""Reports: the job from trigger to CSV, and what a client sees of it.

Owns the queue in the database (`queue`: trigger, claim, every change to a claimed report),
this process's report threads (`runner`), leases and interrupted reports (`liveness`), the
one report-state value and its JSON (`state`), retention (`retention`), one report's
computation (`pipeline`) and its CSV (`export`), a report's rows as columns (`table`) and as
a file every process maps (`table_files`), what a client may learn of a failure
(`failures`), report counters (`counters`) and what pages and the API show of reports and
stores (`views`).

May import: `app.cluster`, `app.ingest`, `app.storage`, `app.engine`, `app.config`,
`app.extensions`. Raises its own exceptions (`QueueFull`, `ReportGone`); the HTTP layer
maps them to answers.
"""
