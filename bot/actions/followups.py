"""Follow-ups of slow changes (Beanstalk updates) on a thread pool of their own.

They must not occupy the web's small background pool (`background.py`) for minutes, or
commands would be answered "busy" behind them. They live in process memory: a web dyno restarted mid-update loses its follow-up
(the audit row still says what was asked); the worker dyno is the place to make them durable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

log = logging.getLogger(__name__)


class FollowUps:
    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor or ThreadPoolExecutor(8, thread_name_prefix="followup")
        # Set on shutdown: a waiting follow-up stops polling and says so in its thread,
        # rather than vanishing when the dyno restarts.
        self.stopping = threading.Event()

    def start(self, work: Callable[[threading.Event], None]) -> None:
        try:
            self._executor.submit(self._run, work, self.stopping)
        except RuntimeError:
            # Shut down already: the work sees `stopping` set and only writes its ending.
            self._run(work, self.stopping)

    def close(self) -> None:
        """Tell waiting follow-ups to wrap up, and wait until they have."""
        self.stopping.set()
        self._executor.shutdown(wait=True)

    @staticmethod
    def _run(work: Callable[[threading.Event], None], stopping: threading.Event) -> None:
        try:
            work(stopping)
        except Exception:
            log.exception("follow-up failed")
