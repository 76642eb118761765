"""`flask keys create|list|revoke`: the API keys of `app.auth.keys`."""

import click
import sqlalchemy as sa

from app.auth.keys import any_active, create_key, revoke_key
from app.extensions import db
from app.storage.database import with_current_schema
from app.storage.models import ApiKey


@click.group("keys")
def keys_command():
    """Create, list and revoke API keys."""


@keys_command.command("create")
@click.argument("name")
@with_current_schema
def create_command(name):
    """Create a key called NAME and print it (the only time it is shown)."""
    if db.session.execute(sa.select(ApiKey.id).where(ApiKey.name == name)).first():
        raise click.ClickException(f"a key named {name!r} exists already")
    click.echo(create_key(name))
    click.echo(f"key {name!r} created: it is shown only now; clients send it as "
               "'Authorization: Bearer <key>'", err=True)


@keys_command.command("list")
@with_current_schema
def list_command():
    """List the keys (names, first characters, dates; never the keys)."""
    rows = db.session.execute(sa.select(ApiKey).order_by(ApiKey.created_at)).scalars().all()
    if not rows:
        click.echo("no keys: the API is open to every client")
        return
    click.echo(f"{'name':<24}{'key starts':<16}{'created (UTC)':<22}revoked (UTC)")
    for row in rows:
        revoked = f"{row.revoked_at:%Y-%m-%d %H:%M:%S}" if row.revoked_at else "-"
        click.echo(f"{row.name:<24}{row.prefix + '...':<16}"
                   f"{row.created_at:%Y-%m-%d %H:%M:%S}{'':<3}{revoked}")


@keys_command.command("revoke")
@click.argument("name")
@with_current_schema
def revoke_command(name):
    """Revoke the key called NAME: it is refused (403) from now on."""
    if not revoke_key(name):
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"key {name!r} revoked")
    if not any_active():
        click.echo("warning: no active key is left, so the API is open to every client "
                   "again; create a key to close it", err=True)
