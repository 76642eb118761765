"""`flask` commands: ingest files, write a report, generate data.

`flask keys` is registered by app/keys.py, beside the keys it manages. The benchmarks need the
dev requirements, so they are scripts apart from the service, in bench/ (`python -m bench.report`
for the figures of each report step).
"""

import sys
import time
from pathlib import Path

import click

from . import generate, pipeline
from .database import with_current_schema
from .ingest import IngestError, ingest

PRINTED_REJECTIONS = 20


def init_app(app):
    app.cli.add_command(ingest_command)
    app.cli.add_command(report_command)
    app.cli.add_command(generate_data_command)


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


@click.command("generate-data")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--stores", default=300, show_default=True, help="Number of stores.")
@click.option("--days", default=8, show_default=True, help="Days of hourly polls.")
@click.option("--seed", default=0, show_default=True, help="Seed: same seed, same data.")
@click.option("--end", default=generate.DEFAULT_END, show_default=True,
              help="UTC instant the polls end at.")
def generate_data_command(out, stores, days, seed, end):
    """Write a realistic data set (a .zip archive, or a folder otherwise)."""
    if stores < 1 or days < 1:
        raise click.BadParameter("--stores and --days must be at least 1")
    began = time.perf_counter()
    dataset = generate.generate_dataset(stores, days, seed, end)
    generate.write_dataset(dataset, out)
    click.echo(f"{len(dataset.status)} polls of {stores} stores written to {out} "
               f"in {time.perf_counter() - began:.2f} s")
