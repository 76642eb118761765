"""`flask` commands: a module per capability, each calling the same functions as the API.

- `flask ingest PATH` (`app.cli.data`): load a zip archive, a folder or a CSV file;
- `flask report --out FILE` (`app.cli.reports`): compute a report and write its CSV;
- `flask keys create|list|revoke` (`app.cli.keys`): API keys;
- `flask data delete` (`app.cli.cleanup`): remove polls by store and time range.

The data generator and the benchmarks are development tools in bench/ (`python -m
bench.generate`, `python -m bench.report`), apart from the service.
"""

from app.cli import cleanup, data, keys, reports


def init_app(app):
    app.cli.add_command(data.ingest_command)
    app.cli.add_command(reports.report_command)
    app.cli.add_command(keys.keys_command)
    app.cli.add_command(cleanup.data_command)
