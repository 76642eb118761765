"""The report as of an instant: computed as if the data ended there (docs/report.md,
"Reports as of an instant")."""

import numpy as np

from .report import build_report


def report_as_of(polls, hours, zones, as_of_us, threads=1):
    """The report of `polls` up to and including `as_of_us`, with ``now = as_of_us``.

    Polls after the instant are left out, so the windows end there, and the last polls
    before it extend to it as usual. With `as_of_us` equal to the latest poll this is the
    plain report.

    Parameters
    ----------
    polls, hours, zones : DataFrame
        As for `build_report`.
    as_of_us : int
        The instant [µs since the epoch, UTC].
    threads : int, optional
        As for `build_report`.

    Returns
    -------
    ReportResult
    """
    kept = polls[polls["timestamp_us"].to_numpy(dtype=np.int64) <= as_of_us]
    return build_report(kept.reset_index(drop=True), hours, zones, now_us=int(as_of_us),
                        threads=threads)
