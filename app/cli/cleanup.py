"""`flask data delete`: remove polls by store and time range (`app.ingest.remove`)."""

import click

from app.ingest.remove import delete_polls
from app.storage.database import with_current_schema


class _Instant(click.ParamType):
    """An ISO 8601 instant (`Z` or an offset; bare is UTC), as µs since the epoch."""

    name = "instant"

    def convert(self, value, param, ctx):
        from app.engine.instants import parse_instant

        try:
            return parse_instant(value)
        except ValueError as mistake:
            self.fail(str(mistake), param, ctx)


@click.group("data")
def data_command():
    """Manage the loaded data."""


@data_command.command("delete")
@click.option("--store", "stores", multiple=True, help="a store id (repeat for several; "
              "none: every store)")
@click.option("--from", "from_us", type=_Instant(), help="first instant removed (inclusive)")
@click.option("--to", "to_us", type=_Instant(), help="instant where removal stops (exclusive)")
@with_current_schema
def delete_command(stores, from_us, to_us):
    """Remove the polls of the given stores within [--from, --to), recorded as an ingest."""
    if not stores and from_us is None and to_us is None:
        raise click.UsageError("name --store, --from or --to: removing every poll is not "
                               "offered")
    if from_us is not None and to_us is not None and to_us <= from_us:
        raise click.UsageError("--to must be after --from")
    removal = delete_polls(stores, from_us, to_us)
    click.echo(f"ingest {removal.ingest_id}: {removal.source}: {removal.removed} polls removed")
