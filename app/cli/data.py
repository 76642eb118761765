"""`flask ingest`: load store data from a path, and print what was loaded and rejected.

Heavy modules (pandas, pyarrow through the ingest) are imported when the command runs, so
that `flask --help` stays quick.
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

import click

from app.storage.database import with_current_schema

PRINTED_REJECTIONS = 20
KINDS = ("status", "hours", "timezone")


@click.command("ingest")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(KINDS),
              help="What one CSV file holds, when its name does not say it "
                   "(store_status.csv, business_hours.csv, store_timezone.csv).")
@click.option("--force", is_flag=True,
              help="Load the files even if the same files were loaded before.")
@with_current_schema
def ingest_command(path, kind, force):
    """Load a zip archive, a folder or one CSV file of store data.

    The same files loaded before are skipped, as over HTTP (`already_loaded`); --force
    loads them again.
    """
    from app.ingest.load import IngestError, ingest

    began = time.perf_counter()
    try:
        with _named_for(path, kind) as source:
            shown = str(path) if kind is None else f"{path} (as {kind})"
            if sys.stdout.isatty():
                with click.progressbar(length=100, label="ingest") as bar:
                    def advance(fraction, label):
                        bar.label = label
                        bar.update(int(fraction * 100) - bar.pos)
                    summary = ingest(source, advance, once=not force, shown=shown)
            else:
                summary = ingest(source, once=not force, shown=shown)
    except IngestError as exc:
        raise click.ClickException(str(exc)) from None
    seconds = time.perf_counter() - began
    if summary.skipped:
        click.echo(f"already loaded as ingest {summary.ingest_id}: {shown} skipped in "
                   f"{seconds:.2f} s (--force loads it again)")
        return
    click.echo(f"ingest {summary.ingest_id} of {summary.source} in {seconds:.2f} s")
    click.echo(f"{'file':<28}{'read':>12}{'loaded':>12}{'duplicate':>12}{'rejected':>12}")
    for f in summary.files:
        click.echo(f"{f.name:<28}{f.read:>12}{f.loaded:>12}{f.duplicate:>12}{f.rejected:>12}")
    for row in summary.rejections.head(PRINTED_REJECTIONS).itertuples():
        click.echo(f"rejected {row.file}:{row.line}: {row.reason}")
    if summary.rejected > PRINTED_REJECTIONS:
        click.echo(f"... and {summary.rejected - PRINTED_REJECTIONS} more rejected rows "
                   f"(table ingest_rejection, ingest_id = {summary.ingest_id})")
    from app.live.webhooks import pending_deliveries

    if waiting := pending_deliveries():
        click.echo(f"webhook deliveries pending: {waiting} (a serving process, run.py or "
                   "gunicorn, sends them within seconds, now or once it starts)")


class _named_for:
    """`path` itself, or with `kind`, a copy of the one CSV file under its kind's name in a
    temporary folder (as `POST /api/v1/ingest?kind=` names an upload)."""

    def __init__(self, path, kind):
        self.path, self.kind, self.folder = path, kind, None

    def __enter__(self):
        if self.kind is None:
            return self.path
        from app.ingest.sources import FILE_ALIASES

        if not self.path.is_file():
            raise click.ClickException(f"--kind needs one CSV file; {self.path} is not a file")
        self.folder = tempfile.mkdtemp(prefix="store-monitor-ingest-")
        named = Path(self.folder) / FILE_ALIASES[self.kind][0]
        shutil.copyfile(self.path, named)
        return named

    def __exit__(self, *exc):
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
