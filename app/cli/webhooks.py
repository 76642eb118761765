"""`flask webhooks add|list|remove`: the alert receivers of `app.live.webhooks`, as
`/api/v1/webhooks` manages them.

`app.live.webhooks` is imported when a command runs, so that `flask --help` stays quick.
"""

import click

from app.storage.database import with_current_schema


@click.group("webhooks")
def webhooks_command():
    """Add, list and remove webhooks."""


@webhooks_command.command("add")
@click.argument("url")
@click.option("--secret", required=True,
              help="Deliveries are signed with it (Store-Monitor-Signature: v1=HMAC-SHA256).")
@click.option("--events", "events", multiple=True, metavar="TYPE[,TYPE...]",
              help="Event types to send (repeat or separate with commas; default: all of "
                   "incident.opened, incident.closed, incident.updated, incident.removed, "
                   "store.silent).")
@click.option("--min-minutes", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Tell of an incident only once it has lasted this many minutes of "
                   "business time (then of its close).")
@with_current_schema
def add_command(url, secret, events, min_minutes):
    """Register a webhook: POST each event to URL."""
    from flask import current_app

    from app.live import webhooks

    types = [t.strip() for text in events for t in text.split(",") if t.strip()]
    try:
        added = webhooks.add_webhook(url, secret, types or None, min_minutes,
                                     allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"])
    except webhooks.WebhookRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"webhook {added['id']} added: {added['url']} ({', '.join(added['events'])}; "
               f"min minutes {added['min_minutes']:g})")


@webhooks_command.command("list")
@with_current_schema
def list_command():
    """List the webhooks (never their secrets)."""
    from app.live import webhooks

    found = webhooks.list_webhooks()
    if not found:
        click.echo("no webhooks: 'flask webhooks add URL --secret SECRET' adds one")
        return
    click.echo(f"{'id':>4}  {'min minutes':>11}  {'created (UTC)':<21}url  events")
    for hook in found:
        click.echo(f"{hook['id']:>4}  {hook['min_minutes']:>11g}  "
                   f"{hook['created_at'][:19].replace('T', ' '):<21}{hook['url']}  "
                   f"{','.join(hook['events'])}")


@webhooks_command.command("remove")
@click.argument("webhook_id", metavar="ID", type=click.IntRange(min=1, max=2**31 - 1))
@with_current_schema
def remove_command(webhook_id):
    """Remove the webhook ID and its deliveries."""
    from app.live import webhooks

    if not webhooks.remove_webhook(webhook_id):
        raise click.ClickException(f"no webhook with id {webhook_id}")
    click.echo(f"webhook {webhook_id} removed")
