"""`flask report`: compute a report now, with the same pipeline as the API's jobs.

Heavy modules (the engine: pandas, pyarrow) are imported when the command runs, so that
`flask --help` stays quick.
"""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from app.storage.database import with_current_schema

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_instant(text, option):
    """An ISO 8601 instant, UTC unless it has an offset (`2023-01-25T18:00:00Z`), as an
    aware datetime; a mistake is one line (`ClickException`), exit status 1."""
    try:
        moment = datetime.fromisoformat(text.strip().removesuffix(" UTC"))
    except ValueError:
        raise click.ClickException(f"{option} {text!r} is not an ISO 8601 instant (such as "
                                   "2023-01-25T18:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
    from app.engine.instants import iso_instant
    from app.ingest.inventory import first_poll_us
    from app.reports import pipeline

    began = time.perf_counter()
    as_of_us = None
    first_us = first_poll_us()
    if first_us is None:
        click.echo("warning: no polls are loaded, so the report has no rows; load data "
                   "with 'flask ingest PATH'", err=True)
    if as_of is not None:
        moment = parse_instant(as_of, "--as-of")
        as_of_us = (moment - _EPOCH) // timedelta(microseconds=1)
        if first_us is None:
            raise click.ClickException("--as-of: no polls are loaded yet")
        if as_of_us < first_us:
            raise click.ClickException(f"--as-of {iso_instant(as_of_us)} is before the first "
                                       f"poll ({iso_instant(first_us)})")
        if moment > datetime.now(timezone.utc):
            raise click.ClickException(f"--as-of {iso_instant(as_of_us)} is in the future")
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
