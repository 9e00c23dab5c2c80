"""Independent reads of one command made at once, so its answer takes about as long as
the slowest read instead of the sum of them all (`status` reads four things on Heroku).

The caller gets what the reads made one after another would have given it: the results in
the order asked for, or the error of the first read, in that order, that failed. That
keeps every reply as it was when several reads fail in different ways. The reads after a
failed one were sent too (they were on the wire together); their answers are dropped.

Each call has its own pool, as large as its reads, and returns only once every read has
ended (each within its client's own timeouts), so no thread outlives the command and no
read lands after its answer. Not one executor for the process: the web worker forks the
child that runs the jobs, and an executor's threads do not survive a fork.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAX_READS = 8  # a bound on the threads one call may start, whatever a caller passes


def read_together(reads: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run `reads` at once; their results in order, or the first failed read's error."""
    if len(reads) > MAX_READS:
        raise ValueError(f"at most {MAX_READS} reads at once, not {len(reads)}")
    if len(reads) <= 1:
        return [read() for read in reads]
    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="read") as pool:
        futures = [pool.submit(read) for read in reads]
    # The pool has shut down: every read has ended, and each future holds its outcome.
    return [future.result() for future in futures]
