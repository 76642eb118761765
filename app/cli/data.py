"""`flask ingest`: load store data from a path, and print what was loaded and rejected."""

import sys
import time
from pathlib import Path

import click

from app.ingest.load import IngestError, ingest
from app.storage.database import with_current_schema

PRINTED_REJECTIONS = 20


@click.command("ingest")
@click.argument("path", type=click.Path(path_type=Path))
@with_current_schema
def ingest_command(path):
    """Load a zip archive, a folder or one CSV file of store data into the database."""
    began = time.perf_counter()
    try:
        if sys.stdout.isatty():
            with click.progressbar(length=100, label="ingest") as bar:
                def advance(fraction, label):
                    bar.label = label
                    bar.update(int(fraction * 100) - bar.pos)
                summary = ingest(path, advance)
        else:
            summary = ingest(path)
    except IngestError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"ingest {summary.ingest_id} of {summary.source} "
               f"in {time.perf_counter() - began:.2f} s")
    click.echo(f"{'file':<28}{'read':>12}{'loaded':>12}{'duplicate':>12}{'rejected':>12}")
    for f in summary.files:
        click.echo(f"{f.name:<28}{f.read:>12}{f.loaded:>12}{f.duplicate:>12}{f.rejected:>12}")
    for row in summary.rejections.head(PRINTED_REJECTIONS).itertuples():
        click.echo(f"rejected {row.file}:{row.line}: {row.reason}")
    if summary.rejected > PRINTED_REJECTIONS:
        click.echo(f"... and {summary.rejected - PRINTED_REJECTIONS} more rejected rows "
                   f"(table ingest_rejection, ingest_id = {summary.ingest_id})")
