"""`flask report`: compute a report now, with the same pipeline as the API's jobs."""

import time
from pathlib import Path

import click

from app.reports import pipeline
from app.storage.database import with_current_schema


@click.command("report")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the CSV ('-' for standard output).")
@with_current_schema
def report_command(out):
    """Compute the report now, with the same engine as the API, and write its CSV."""
    began = time.perf_counter()
    output = pipeline.compute_report()
    if str(out) == "-":
        click.echo(output.csv, nl=False)
    else:
        out.write_text(output.csv)
        click.echo(f"{output.rows} stores written to {out} "
                   f"in {time.perf_counter() - began:.2f} s", err=True)
