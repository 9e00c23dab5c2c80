"""The sandbox's demo job queue: what `demo`'s worker dynos work through, and the real
HireFire endpoint (`hirefire-resource`, a development dependency) that reports it.

The queue lives on the fake Heroku's clock: jobs wait in order, and each worker dyno that
is `up` on the fake finishes `per_dyno` jobs a second, so the dynos the autoscaler adds
drain it. The endpoint is a small Flask app wrapped in hirefire-resource's own middleware,
as an instrumented Python app is, answering `GET <url>/hirefire/<HIREFIRE_TOKEN>/info` with
`[{"name": "worker", "value": <latency s or jobs waiting>}, {"name": "worker_busy", "value":
<running>}]`,
so the bot reads it over HTTP exactly as it reads a real app's.

`bot.sandbox.queue_play` enqueues a backlog and plays the worker tick against it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.sandbox.fakes.server import LocalServer

PER_DYNO_JOBS_PER_SECOND = 1.0  # each worker dyno's pace: a job takes a second


class JobQueue:
    """Jobs waiting in order, drained by up worker dynos; thread-safe, as the endpoint reads
    it from its server thread while the play drains it."""

    def __init__(
        self, clock: Callable[[], datetime], per_dyno: float = PER_DYNO_JOBS_PER_SECOND
    ) -> None:
        self._clock = clock
        self.per_dyno = per_dyno
        self._batches: deque[list[Any]] = deque()  # [enqueued_at, jobs left], oldest first
        self._credit = 0.0  # a fraction of a job done, carried to the next drain
        self._running = 0
        self._lock = threading.Lock()
        # What the endpoint reports for the type: an app reports one number per type, the
        # one its autoscaling target reads (latency:30s or jobs:50); the play sets it.
        self.reports = "latency"

    def value(self) -> float:
        """The endpoint's number for the type: latency in seconds, or jobs waiting."""
        return self.latency() if self.reports == "latency" else float(self.waiting())

    def enqueue(self, jobs: int, at: datetime | None = None) -> None:
        if jobs <= 0:
            return
        with self._lock:
            self._batches.append([at or self._clock(), jobs])

    def drain(self, seconds: float, dynos: int) -> int:
        """`dynos` up worker dynos work for `seconds`: the jobs they finished."""
        with self._lock:
            self._credit += dynos * self.per_dyno * seconds
            done = 0
            while self._batches and self._credit >= 1:
                batch = self._batches[0]
                taken = min(batch[1], int(self._credit))
                batch[1] -= taken
                self._credit -= taken
                done += taken
                if batch[1] == 0:
                    self._batches.popleft()
            if not self._batches:
                self._credit = 0.0  # idle dynos bank no work for later
                # Jobs in progress, on average (Little's law: throughput x time per job).
                self._running = min(dynos, math.ceil(done / seconds / self.per_dyno))
            else:
                self._running = dynos  # every dyno holds a job while any wait
            return done

    def waiting(self) -> int:
        with self._lock:
            return sum(batch[1] for batch in self._batches)

    def latency(self) -> float:
        """Seconds the oldest waiting job has waited (HireFire's job queue latency)."""
        with self._lock:
            if not self._batches:
                return 0.0
            return max(0.0, round((self._clock() - self._batches[0][0]).total_seconds(), 1))

    def running(self) -> int:
        with self._lock:
            return self._running


def available() -> bool:
    """Whether hirefire-resource (a development dependency) is installed."""
    try:
        import hirefire_resource  # noqa: F401
    except ImportError:
        return False
    return True


class QueueEndpoint:
    """A demo app's web process with hirefire-resource's middleware, on 127.0.0.1."""

    def __init__(self, queues: dict[str, JobQueue]) -> None:
        """`queues`: process type to its queue (`worker`)."""
        from flask import Flask
        from hirefire_resource import HireFire
        from hirefire_resource.configuration import Configuration
        from hirefire_resource.middleware.wsgi.flask import HireFireMiddleware

        # hirefire-resource keeps one configuration per process, on the class: the
        # sandbox's replaces it while it runs and `stop()` puts the old one back.
        self._hirefire = HireFire
        self._saved = HireFire.configuration
        logger = logging.getLogger("hirefire_resource")
        handlers = list(logger.handlers)
        configuration = Configuration()
        logger.handlers[:] = handlers  # it adds a stdout handler each time: not in a console
        for ptype, queue in queues.items():
            configuration.dyno(ptype, queue.value)
            configuration.dyno(f"{ptype}_busy", queue.running)
        self._configuration = configuration
        app = Flask("sandbox-demo-app")

        @app.get("/")
        def home() -> str:
            return "demo: the sandbox's app (its job queue is at /hirefire/<token>/info)"

        app.wsgi_app = HireFireMiddleware(app)  # type: ignore[method-assign]
        self._server = LocalServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> QueueEndpoint:
        self._hirefire.configuration = self._configuration
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        self._hirefire.configuration = self._saved
