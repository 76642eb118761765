"""`flask report`: compute a report now, with the same pipeline as the API's jobs.

Heavy modules (the engine: pandas, pyarrow) are imported when the command runs, so that
`flask --help` stays quick.
"""

import time
from pathlib import Path

import click

from app.storage.database import with_current_schema


@click.command("report")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the CSV ('-' for standard output).")
@click.option("--as-of", "as_of", metavar="INSTANT",
              help="Compute the report as if the data ended at this instant (ISO 8601, UTC "
                   "unless it has an offset), as the API's as_of does.")
@with_current_schema
def report_command(out, as_of):
    """Compute a report of the loaded data and write its CSV.

    A summary line goes to standard error, so that '--out -' writes only the CSV.
    """
    from app.engine.instants import iso_instant, parse_instant
    from app.ingest.inventory import check_as_of, first_poll_us
    from app.reports import pipeline

    began = time.perf_counter()
    as_of_us = None
    first_us = first_poll_us()
    if first_us is None:
        click.echo("warning: no polls are loaded, so the report has no rows; load data "
                   "with 'flask ingest PATH'", err=True)
    if as_of is not None:
        try:
            as_of_us = check_as_of(parse_instant(as_of))
        except ValueError as refused:  # not an instant, or not one the data has
            message = str(refused)
            raise click.ClickException(f"--{message.replace('_', '-', 1)}" if message.startswith(
                "as_of") else f"--as-of {message}") from None
    output = pipeline.compute_report(as_of_us=as_of_us)
    if str(out) == "-":
        click.echo(output.csv, nl=False)
        where = "standard output"
    else:
        out.write_text(output.csv)
        where = str(out)
    up_to = "" if output.now_us is None else (
        f", data {'as of' if as_of_us is not None else 'up to'} {iso_instant(output.now_us)}")
    click.echo(f"{output.rows} stores written to {where}{up_to} "
               f"in {time.perf_counter() - began:.2f} s", err=True)
