"""Live: each store's state at `now`, the kept incidents, and webhook alerts (SPEC "Live
state and alerts").

Owns computing states and incidents from polls (`state`, pure), keeping them up to date in
the ingest's own transaction (`incidents`, called through `app.ingest.load.polls_loaded`
and, for removals, `app.ingest.remove.polls_removed`, which `init_app` connects), reading
them back (`read`), and webhooks: registration, the outbox written with the incidents,
signed deliveries with retries (`webhooks`).

May import: `app.ingest` (its hook), `app.storage`, `app.engine`, `app.config`,
`app.extensions`.
"""


def init_app(app):
    from app.ingest.load import polls_loaded
    from app.ingest.remove import polls_removed
    from app.live import incidents, webhooks

    polls_loaded.connect(incidents.on_polls_loaded, app, weak=False)
    polls_removed.connect(incidents.on_polls_removed, app, weak=False)
    webhooks.init_app(app)
