"""Heroku's router and Logplex in front of one fake app's web dynos, for the closed-loop
benchmark (`benchmarks/closed_loop.py`): traffic in, router log lines out to a drain, from
the load the app's running dynos carry.

The dynos' capacity is the simulator's model (`policies.simulator`), called step by step
rather than copied: at the start of each 15 s step the router reads which web dynos the
fake Heroku runs and when each is (or will be) up (`FakeHeroku.ready_times`; a started dyno
boots for a delay drawn as the simulator draws it), and `serving_dynos` and `serve_step`
give the step's queue-wait distribution and the backlog carried on; `draw_request` draws
each request's wait and service time from it. The step's requests are the simulator's own
logged count for it (`Context.counted`, the same Poisson draw), spread over the step and
sent in `chunks` Logplex batches as the step goes by (real Logplex delivers within a
second or two), each line a real router line:

    at=info method=GET path="/" host=APP.herokuapp.com request_id=… fwd="…" dyno=web.2
        connect=1ms service=412ms status=200 bytes=… protocol=https

where `service` is the dyno's time from receiving the request to answering it, so it holds
the wait in the dyno's queue, as on Heroku; a request that would wait past the router's
30 s is an `at=error code=H12 desc="Request timeout"` line with `service=30000ms
status=503`. With `queue_lines` each served request also gets the app's own
`[hirefire:router] queue=Nms` line (the HireFire convention; Heroku's router does not log
queue time).

What the router measures, as the simulator defines it: SLO-violation minutes (clock
minutes whose p95 queue time, `minute_queue_p95_ms` of the minute's steps, `violates` the
SLO) and, from the fake's formation over time, dyno-hours.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from bot.sandbox.fakes.heroku import FakeHeroku
from policies.simulator import (
    Context,
    Part,
    draw_request,
    minute_queue_p95_ms,
    serve_step,
    serving_dynos,
    violates,
)

log = logging.getLogger(__name__)

_PATHS = ("/", "/products", "/cart", "/api/items", "/search?q=boots")


def frame(message: str) -> str:
    """One RFC 6587 octet-counted frame: the message's length in bytes, a space, the message
    (which ends in a newline, as every Heroku message does)."""
    return f"{len(message.encode())} {message}"


def post_frames(session: requests.Session, url: str, frames: list[str], frame_id: str) -> bool:
    """POST `frames` to a drain as one Logplex batch; False when it did not take them."""
    try:
        response = session.post(
            url,
            data="".join(frames).encode(),
            headers={
                "Content-Type": "application/logplex-1",
                "Logplex-Msg-Count": str(len(frames)),
                "Logplex-Frame-Id": frame_id,
                "Logplex-Drain-Token": "d.00000000-0000-0000-0000-000000000000",
            },
            timeout=5,
        )
    except requests.RequestException as error:
        # Heroku drops lines a drain does not take; so does the sandbox.
        log.info("sandbox drain post failed", extra={"error": type(error).__name__})
        return False
    return response.status_code < 300


@dataclass(frozen=True)
class SimClock:
    """A compressed clock: simulated time `sim_start + (wall - wall_start) * speed`. The
    worker reads the same from `DEPLOYBOT_BENCH_CLOCK` (`bot.worker.main.tick_clock`)."""

    sim_start: float  # epoch seconds
    wall_start: float  # epoch seconds (time.time())
    speed: float

    def now(self) -> datetime:
        return datetime.fromtimestamp(
            self.sim_start + (time.time() - self.wall_start) * self.speed, UTC
        )

    def sleep_until(self, moment: datetime, stop: threading.Event) -> bool:
        """Wait until simulated `moment`; False when `stop` was set first."""
        while True:
            ahead = (moment - self.now()).total_seconds() / self.speed
            if ahead <= 0:
                return True
            if stop.wait(min(ahead, 0.5)):
                return False

    @property
    def env_value(self) -> str:
        return f"{self.sim_start} {self.wall_start} {self.speed}"


@dataclass
class RouterStats:
    steps: int = 0
    requests: int = 0  # router lines sent (H12s included)
    h12: int = 0
    queue_lines: int = 0
    posts: int = 0
    failed_posts: int = 0
    violation_minutes: int = 0
    minutes: int = 0
    # Per clock minute: (minute start, p95 queue ms, web dynos at the minute's end).
    per_minute: list[tuple[datetime, float, int]] = field(default_factory=list)


class FakeRouter:
    """Serves `context`'s traffic on `app`'s web dynos in `heroku`, starting at `start`
    (a whole minute: step k is [start + k * tick, start + (k + 1) * tick))."""

    def __init__(
        self,
        heroku: FakeHeroku,
        app: str,
        context: Context,
        start: datetime,
        drain_url: str,
        *,
        chunks: int = 3,
        queue_lines: bool = True,
        seed: int = 0,
    ) -> None:
        self._heroku = heroku
        self.app = app
        self.context = context
        self.start = start
        self._drain_url = drain_url
        self._chunks = max(1, chunks)
        self._queue_lines = queue_lines
        self._rng = random.Random(f"router/{seed}")
        self._session = requests.Session()
        self._session.trust_env = False
        self._backlog = 0.0
        self._minute: list[Part] = []
        self.stats = RouterStats()

    @property
    def steps(self) -> int:
        return len(self.context.rates)

    def serve(self, clock: SimClock, stop: threading.Event, steps: int | None = None) -> None:
        """Play `steps` steps (default all) on `clock`, each batch sent once its stretch of
        simulated time has passed. Returns early when `stop` is set."""
        tick = self.context.model.tick_s
        for k in range(self.steps if steps is None else min(steps, self.steps)):
            step_start = self.start + timedelta(seconds=k * tick)
            if not clock.sleep_until(step_start, stop):
                return
            part = self.begin_step(k)
            shares = _split(int(self.context.counted[k]), self._chunks)
            for index, count in enumerate(shares):
                begin = step_start + timedelta(seconds=tick * index / self._chunks)
                end = step_start + timedelta(seconds=tick * (index + 1) / self._chunks)
                if not clock.sleep_until(end, stop):
                    return
                self.send(self.lines(part, count, begin, end), f"loop-{k}-{index}")
            self.end_step(k, part)

    def begin_step(self, k: int) -> Part:
        """Step k's queue-wait distribution, from the dynos running at its start."""
        model = self.context.model
        t = k * model.tick_s
        ready = [(r - self.start).total_seconds() for r in self._heroku.ready_times(self.app)]
        serving = serving_dynos(model, ready, t)
        part, self._backlog = serve_step(model, self.context.rates[k], serving, self._backlog)
        return part

    def end_step(self, k: int, part: Part) -> None:
        model = self.context.model
        self.stats.steps += 1
        self._minute.append(part)
        if (k + 1) % (60 // model.tick_s) == 0:
            queue_ms = minute_queue_p95_ms(model, self._minute)
            self.stats.minutes += 1
            if violates(model, queue_ms):
                self.stats.violation_minutes += 1
            began = self.start + timedelta(seconds=(k + 1) * model.tick_s - 60)
            dynos = len(self._heroku.ready_times(self.app))
            self.stats.per_minute.append((began, queue_ms, dynos))
            self._minute = []

    def lines(self, part: Part, count: int, begin: datetime, end: datetime) -> list[str]:
        """`count` requests' frames, stamped in [begin, end), on the dynos up by then."""
        model = self.context.model
        up = [
            f"web.{number}"
            for number, ready in enumerate(self._heroku.ready_times(self.app), start=1)
            if ready <= end
        ]
        span = (end - begin).total_seconds()
        frames = []
        for _ in range(count):
            when = begin + timedelta(seconds=self._rng.uniform(0, span))
            stamp = when.isoformat()
            if not up:
                frames.append(frame(self._router(stamp, None, 0.0, 0.0, "H14")))
                continue
            dyno = self._rng.choice(up)
            wait, service = draw_request(model, part, self._rng)
            if wait > model.timeout_s:
                frames.append(frame(self._router(stamp, dyno, 0.0, 0.0, "H12")))
                continue
            frames.append(frame(self._router(stamp, dyno, wait, service, None)))
            if self._queue_lines:
                self.stats.queue_lines += 1
                frames.append(
                    frame(
                        f"<190>1 {stamp} host app {dyno} - [hirefire:router] "
                        f"queue={round(wait * 1000)}ms\n"
                    )
                )
        return frames

    def send(self, frames: list[str], frame_id: str) -> None:
        if not frames:
            return
        self.stats.posts += 1
        if not post_frames(self._session, self._drain_url, frames, frame_id):
            self.stats.failed_posts += 1

    def dyno_hours(self, until: datetime) -> float:
        """Web dyno-hours billed from `start` to `until`, from every formation change the
        fake saw (a started dyno is billed at once, booting or not, as on Heroku)."""
        changes = [
            (at, quantity)
            for at, app, kind, quantity in list(self._heroku.formation_changes)
            if app == self.app and kind == "web"
        ]
        quantity, moments = 0, []
        for at, count in changes:
            if at <= self.start:
                quantity = count
            elif at < until:
                moments.append((at, count))
        total, since = 0.0, self.start
        for at, count in moments:
            total += quantity * (at - since).total_seconds()
            quantity, since = count, at
        total += quantity * (until - since).total_seconds()
        return total / 3600

    def close(self) -> None:
        self._session.close()

    def _router(
        self, stamp: str, dyno: str | None, wait: float, service: float, code: str | None
    ) -> str:
        self.stats.requests += 1
        path = self._rng.choice(_PATHS)
        request_id = f"{self._rng.getrandbits(128):032x}"
        where = (
            f'method=GET path="{path}" host={self.app}.herokuapp.com request_id={request_id} '
            f'fwd="203.0.113.{self._rng.randrange(1, 255)}"'
        )
        if code == "H12":
            self.stats.h12 += 1
            return (
                f'<158>1 {stamp} host heroku router - at=error code=H12 desc="Request timeout" '
                f"{where} dyno={dyno} connect=0ms service=30000ms status=503 bytes=0 "
                "protocol=https\n"
            )
        if code == "H14":
            return (
                f'<158>1 {stamp} host heroku router - at=error code=H14 desc="No web dynos '
                f'running" {where} dyno= connect= service= status=503 bytes= protocol=https\n'
            )
        took = round((wait + service) * 1000)
        return (
            f"<158>1 {stamp} host heroku router - at=info {where} dyno={dyno} connect=1ms "
            f"service={took}ms status=200 bytes={self._rng.randrange(400, 9000)} protocol=https\n"
        )


def _split(count: int, parts: int) -> list[int]:
    """`count` as `parts` whole numbers that differ by at most one."""
    base, extra = divmod(count, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
