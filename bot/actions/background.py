"""The web process's background work (platform calls, answers to `response_url`) on a
small, bounded pool of its own.

Slack listeners ack on the request's thread and hand the rest here. The pool is small
because the work mostly waits on the network, and every extra thread would take GIL time
from the acks; the queue is bounded so that a burst cannot pile up unbounded memory or
minutes of latency. When every slot is taken `try_submit` says no at once, and the caller
answers "busy, try again" instead of queueing.

This replaces bolt's lazy listeners, which deep-copy each request (`create_copy`) before
handing it to their executor: under load that copy took about 45 % of the request threads'
GIL time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

THREADS = 2  # per web worker process
QUEUE = 256  # waiting jobs per process (a few seconds of work); more get "busy"
BUSY = "I'm busy with other commands right now. Try again in a few seconds."


class Background:
    """A bounded executor: at most `threads` jobs run and `queue` wait; `try_submit`
    never blocks."""

    def __init__(
        self, threads: int = THREADS, queue: int = QUEUE, executor: Executor | None = None
    ) -> None:
        # Threads start on first submit, so a gunicorn master that preloads the app forks
        # no half-made pool into its workers.
        self._executor = executor or ThreadPoolExecutor(threads, thread_name_prefix="background")
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
