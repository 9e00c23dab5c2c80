"""Follow-ups of slow changes (Beanstalk updates) on a thread pool of their own.

They must not occupy bolt's lazy-listener threads for minutes, or acks would queue behind
them. They live in process memory: a web dyno restarted mid-update loses its follow-up
(the audit row still says what was asked); the worker dyno is the place to make them durable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

log = logging.getLogger(__name__)


class FollowUps:
    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor or ThreadPoolExecutor(8, thread_name_prefix="followup")

    def start(self, work: Callable[[], None]) -> None:
        self._executor.submit(self._run, work)

    @staticmethod
    def _run(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:
            log.exception("follow-up failed")
