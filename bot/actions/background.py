"""The web process's background work (platform calls, answers to `response_url`) on a
small, bounded pool of its own.

Slack listeners ack on the request's thread and hand the rest here. The pool is small
because the work mostly waits on the network, and every extra thread would take GIL time
from the acks; the queue is bounded so that a burst cannot pile up unbounded memory or
minutes of latency. When every slot is taken `try_submit` says no at once, and the caller
answers "busy, try again" instead of queueing.

The pool's threads run at a lower CPU priority (Linux `nice` is per thread): when an ack
and a background job are both ready to run, the kernel runs the ack first. They still
share the GIL, so the pool stays small.

Why the queue holds 1024 jobs per worker process: Slack's `response_url` stays valid for
30 minutes, so every accepted command must be answered within that. A `/deploy` job is up
to three Heroku calls and one post to Slack; at up to about 3 s a job (calls of about 1 s
each), two threads clear 1024 waiting jobs in 1024 / 2 x 3 s = 25.6 min, inside the 30.
A burst of 50 concurrent commands from a team, or a thousand in a row from the ack
benchmark's closed loop (about 600 per worker), fits without a "busy" answer. A waiting
job holds only its payload dict and two small closures, a few KB: about 5 MB at the bound.

This replaces bolt's lazy listeners, which deep-copy each request (`create_copy`) before
handing it to their executor: under load that copy took about 45 % of the request threads'
GIL time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

THREADS = 2  # per web worker process
QUEUE = 1024  # waiting jobs per worker process (the arithmetic is above); more get "busy"
NICE = 10  # added to the pool threads' nice value: below the request threads, not starved
BUSY = "I'm busy with other commands right now. Try again in a few seconds."


class Background:
    """A bounded executor: at most `threads` jobs run and `queue` wait; `try_submit`
    never blocks."""

    def __init__(
        self, threads: int = THREADS, queue: int = QUEUE, executor: Executor | None = None
    ) -> None:
        # Threads start on first submit, so a gunicorn master that preloads the app forks
        # no half-made pool into its workers.
        self._executor = executor or ThreadPoolExecutor(
            threads, thread_name_prefix="background", initializer=_yield_cpu
        )
        self._slots = threading.BoundedSemaphore(threads + queue)
        self.capacity = threads + queue
        self.refused = 0  # jobs turned away because every slot was taken

    def try_submit(self, fn: Callable[..., Any], /, *args: Any) -> bool:
        """Start `fn(*args)` when a thread is free; False (and nothing queued) if full."""
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            return False
        try:
            self._executor.submit(self._run, fn, args)
        except RuntimeError:  # shut down: the process is stopping
            self._slots.release()
            self.refused += 1
            return False
        return True

    def close(self, wait: bool = True) -> None:
        """Finish what was accepted (gunicorn's worker_exit), then refuse new work."""
        self._executor.shutdown(wait=wait)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("background job failed", extra={"job": getattr(fn, "__name__", "?")})
        finally:
            self._slots.release()


def _yield_cpu() -> None:
    """Lower the calling pool thread's CPU priority (each pool thread runs this first)."""
    if hasattr(os, "setpriority"):
        # Raising one's own nice needs no privilege; where it is refused, run as before.
        thread = threading.get_native_id()
        with contextlib.suppress(OSError):
            niceness = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + NICE))
