"""How the worker's jobs are faring, for its heartbeat: which keep failing and which hang.

The heartbeat is a job of its own, so it went on beating while the autoscale tick raised
on every run or the alert sender sat in a call that never answered: the web dyno saw a
healthy worker. Each job now runs through `JobWatch.wrap`, which logs a failure once per
run (its class and a redacted traceback, never a secret: `bot.logs`) and remembers it;
`JobWatch.trouble` is the sentence the heartbeat stores and `/deploy about` shows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.heartbeats import TROUBLE_CHARS
from policies.slack_text import clip

log = logging.getLogger(__name__)

# One failed run is a database restart or a dropped connection, gone by the next run;
# two in a row is a job that is not doing its work.
FAILING_RUNS = 2
# A run this long, or three of its intervals if longer, is stuck: every platform call has a
# timeout of seconds, and a run's work is minutes at most.
HUNG_AFTER = timedelta(minutes=5)


@dataclass
class _State:
    every: timedelta
    running_since: datetime | None = None
    failing_since: datetime | None = None
    failures: int = 0
    error: str = ""


class JobWatch:
    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))  # replaceable: tests move it
        self._jobs: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def wrap(self, name: str, job: Callable[[], object], every: float) -> Callable[[], None]:
        """`job` as the scheduler should run it: timed, and its failures logged and kept."""
        with self._lock:
            # Kept across schedulers: a run still hung from the last lead stays reported.
            self._jobs.setdefault(name, _State(timedelta(seconds=every)))

        def run() -> None:
            state = self._jobs[name]
            with self._lock:
                state.running_since = self.now()
            try:
                job()
            except Exception as error:
                # Not raised on: APScheduler would log it a second time and learn nothing.
                log.error("job failed", extra={"job": name, "error": type(error).__name__},
                          exc_info=True)  # fmt: skip
                with self._lock:
                    state.failures += 1
                    state.failing_since = state.failing_since or state.running_since
                    state.error = type(error).__name__
            else:
                with self._lock:
                    state.failures, state.failing_since, state.error = 0, None, ""
            finally:
                with self._lock:
                    state.running_since = None
                    self._idle.notify_all()

        run.__name__ = name
        return run

    def wait_idle(self, timeout: float) -> list[str]:
        """Wait up to `timeout` seconds for every run to end; the jobs still running then."""

        def running() -> list[str]:
            return [name for name, state in self._jobs.items() if state.running_since]

        with self._idle:
            self._idle.wait_for(lambda: not running(), timeout)
            return running()

    def trouble_key(self) -> str | None:
        """Names the current trouble (its jobs and since when), not its counts: the same
        while it lasts, so it is told once; None when all is well."""
        return (
            ";".join(f"{name}@{since.isoformat()}" for name, since, _ in self._troubles()) or None
        )

    def _troubles(self) -> list[tuple[str, datetime, str]]:
        """Each job failing or hung: its name, since when, and what to say of it."""
        now = self.now()
        found: list[tuple[str, datetime, str]] = []
        with self._lock:
            for name, state in sorted(self._jobs.items()):
                if state.failures >= FAILING_RUNS and state.failing_since is not None:
                    found.append((name, state.failing_since, (
                        f"{name} failing since {state.failing_since:%H:%M:%S} UTC "
                        f"({state.failures} runs in a row, {state.error})"
                    )))  # fmt: skip
                started = state.running_since
                if started is not None and now - started > max(HUNG_AFTER, 3 * state.every):
                    minutes = int((now - started).total_seconds() // 60)
                    found.append((name, started, f"{name} running for {minutes} min"))
        return found

    def trouble(self) -> str | None:
        """What is wrong with the jobs, in a sentence (plain text), or None when all is well."""
        said = [text for _, _, text in self._troubles()]
        if not said:
            return None
        return clip("; ".join(said), TROUBLE_CHARS)
