"""Independent reads of one command made at once, so its answer takes about as long as
the slowest read instead of the sum of them all (`status` reads four things on Heroku).

The caller gets what the reads made one after another would have given it: the results in
the order asked for, or the error of the first read, in that order, that failed. That
keeps every reply as it was when several reads fail in different ways.

Some answers end the whole call: Heroku rate-limiting the account, refusing the key, or
knowing no such app tells the same to every read. The read that gets one says so
(`end_call`), and from then on no read of the call sends anything: one not yet sent, or
about to be sent again after a 5xx or a 429, raises `Stopped` instead (`check_call`), which
gives way to the ending read's error. Reads already on the wire are answered; their answers
are dropped. Without this, every read of a status for a missing app, or of a throttled
account, went on retrying, spending the hour's budget and waiting for nothing.

Each call has its own pool, as large as its reads, and returns only once every read has
ended (each within its client's own timeouts), so no thread outlives the command and no
read lands after its answer. Not one executor for the process: the web worker forks the
child that runs the jobs, and an executor's threads do not survive a fork.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from threading import Lock
from typing import Any

MAX_READS = 8  # a bound on the threads one call may start, whatever a caller passes


class Stopped(Exception):
    """A read not sent (or not sent again) because another read ended its call."""


class _Call:
    """The reads of one `read_together` call: whether one of them has ended it, and which."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._ended_by: int | None = None

    def end(self, read: int) -> None:
        with self._lock:
            if self._ended_by is None:
                self._ended_by = read

    def ended(self) -> int | None:
        with self._lock:
            return self._ended_by


# The call and the index of the read running in this thread; unset outside read_together.
_running: ContextVar[tuple[_Call, int] | None] = ContextVar("read_together", default=None)


def end_call() -> None:
    """The answer this read got ends its whole call: the other reads send nothing more.
    Nothing outside `read_together`."""
    running = _running.get()
    if running is not None:
        running[0].end(running[1])


def call_ended() -> bool:
    """True when a read of this call, this one included, has ended it."""
    running = _running.get()
    return running is not None and running[0].ended() is not None


def check_call() -> None:
    """Raise `Stopped` if another read has ended this read's call: call it before sending."""
    running = _running.get()
    if running is not None and running[0].ended() not in (None, running[1]):
        raise Stopped("another read ended the call")


def read_together(reads: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run `reads` at once; their results in order, or the first failed read's error."""
    if len(reads) > MAX_READS:
        raise ValueError(f"at most {MAX_READS} reads at once, not {len(reads)}")
    if len(reads) <= 1:
        return [read() for read in reads]
    call = _Call()

    def run(index: int) -> Any:
        # A pool's thread may run several reads of a call in turn: each sets its own index.
        token = _running.set((call, index))
        try:
            return reads[index]()
        finally:
            _running.reset(token)

    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="read") as pool:
        futures = [pool.submit(run, index) for index in range(len(reads))]
    # The pool has shut down: every read has ended, and each future holds its outcome.
    failures = [error for future in futures if (error := future.exception()) is not None]
    # A stopped read gives way to the error that ended its call, wherever that read stands.
    told = [error for error in failures if not isinstance(error, Stopped)] or failures
    if told:
        raise told[0]
    return [future.result() for future in futures]
