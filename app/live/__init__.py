"""Live: each store's state at `now`, the kept incidents, and webhook alerts (issue 20,
SPEC "Live state and alerts").

Owns computing states and incidents from polls (`state`, pure), keeping them up to date in
the ingest's own transaction (`incidents`, called through `app.ingest.load.polls_loaded`,
which `init_app` connects), reading them back (`read`), and webhooks: registration, the
outbox written with the incidents, signed deliveries with retries (`webhooks`).

May import: `app.ingest` (its hook), `app.storage`, `app.engine`, `app.config`,
`app.extensions`.
"""


def init_app(app):
    from app.ingest.load import polls_loaded
    from app.live import incidents, webhooks

    polls_loaded.connect(incidents.on_polls_loaded, app, weak=False)
    webhooks.init_app(app)
