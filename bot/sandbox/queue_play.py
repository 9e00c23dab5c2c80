"""`/deploy simulate queue APP` in the sandbox: a backlog of jobs enqueued on the demo app's
job queue (`bot.sandbox.job_queue`), played for eight minutes in a second, with the
real worker-type autoscaler (`bot.worker.autoscale_workers`) reading the app's real
hirefire-resource endpoint over HTTP and scaling its worker dynos on the fake Heroku.

Each 15 s step (the worker's tick) enqueues that step's arrivals, moves the fake's clock on
15 s, lets the worker dynos that are `up` there drain the queue, and ticks. What the
autoscaler posts goes to `say` as it happens, with the simulated time, and so does a line
a minute about the queue. Nothing sleeps: the simulated clock is the fake Heroku's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from bot.actions.results import Reply, Result
from bot.platforms.base import PlatformError
from bot.registry import UnknownApp
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.job_queue import JobQueue
from bot.sandbox.spike import Say, _stamp, autoscaling_for_play
from bot.services import Services
from bot.store.audit import Actor
from bot.store.worker_autoscale_settings import WorkerAutoscaleStore
from bot.worker.autoscale import Autoscaler
from bot.worker.autoscale_workers import WorkerAutoscaler
from policies.commands import Command
from policies.slack_text import listed

STEP_SECONDS = 15  # the worker's autoscale tick
BOOT_SECONDS = 45.0  # Heroku dynos take 30–60 s to boot
PROCESS = "worker"
# What the play turns autoscaling on with, when it was never set.
AUTOSCALE = "target=latency:30s min=0 max=10"


@dataclass(frozen=True)
class Burst:
    """`per_minute` jobs a minute from minute `start` to `end`, none otherwise."""

    per_minute: int = 240
    start: float = 1.0
    end: float = 5.0
    minutes: int = 8

    def jobs(self, minute: float) -> float:
        return self.per_minute if self.start <= minute < self.end else 0.0


@dataclass
class QueueOutcome:
    app: str
    started: datetime
    workers: list[int] = field(default_factory=list)  # at the start and after each tick
    enqueued: int = 0
    done: int = 0
    peak_latency: float = 0.0
    peak_waiting: int = 0
    ups: int = 0
    downs: int = 0
    held_busy: int = 0  # ticks that kept workers because jobs were still running
    refused: int = 0
    wall_seconds: float = 0.0

    def summary(self, minutes: int) -> str:
        shape = self.workers or [0]
        actions = self.ups + self.downs
        acted = (
            f"in {actions} scale action{'s' if actions != 1 else ''} ({self.ups} up, "
            f"{self.downs} down)"
            if actions
            else "with no scale action"
        )
        held = (
            f" {self.held_busy} tick{'s' if self.held_busy != 1 else ''} kept the workers "
            "because jobs were still running."
            if self.held_busy
            else ""
        )
        refused = (
            f" {self.refused} decision{'s' if self.refused != 1 else ''} could not be carried "
            "out (see above)."
            if self.refused
            else ""
        )
        left = f", {self.enqueued - self.done:,} still waiting" if self.done < self.enqueued else ""
        return (
            f"Played {minutes} simulated minutes of jobs against `{self.app}` in "
            f"{self.wall_seconds:.1f} s: {self.enqueued:,} jobs enqueued, {self.done:,} done"
            f"{left}; the queue peaked at {self.peak_waiting:,} jobs and "
            f"{self.peak_latency:,.0f} s of latency. Worker dynos {shape[0]} → {max(shape)} → "
            f"{shape[-1]} (start → most → end) {acted}.{held}{refused} "
            f"`/deploy autoscale {self.app} status` lists the worker's latest decisions."
        )


def simulate(
    services: Services,
    heroku: FakeHeroku,
    queues: dict[str, JobQueue],
    say: Say,
    actor: Actor,
    command: Command,
    *,
    burst: Burst | None = None,
) -> Result:
    """`/deploy simulate queue APP`: turn worker autoscaling on if never set, play, summarize."""
    app = command.app or ""
    try:
        resolved = services.resolve(app)
    except (UnknownApp, PlatformError) as error:
        return Reply(str(error))
    queue = queues.get(resolved.target.name)
    if queue is None or resolved.target.queue_url is None:
        have = listed(sorted(queues), empty="")
        if not have:
            return Reply(
                "The sandbox's job queue needs the `hirefire-resource` package "
                "(`make .venv/.installed` installs it)."
            )
        return Reply(f"`{app}` has no job queue in the sandbox; {have} has one.")
    burst = burst or Burst()
    channel = resolved.target.channel
    settings = WorkerAutoscaleStore(services.db).settings(app, PROCESS)
    on = f"autoscale {app} {PROCESS} on {AUTOSCALE}"
    refused, kept = autoscaling_for_play(
        services, actor, say, channel, settings, "Worker autoscaling", on, PROCESS
    )
    if refused is not None:
        return refused  # its reason is the answer
    stored = WorkerAutoscaleStore(services.db).settings(app, PROCESS)
    # The demo app reports what the target reads, as an app instrumented for it would.
    queue.reports = stored.target_kind if stored else "latency"
    outcome = _play(services, heroku, queue, say, app, resolved.target.name, channel, burst)
    if settings is not None and settings.mode == "shadow":
        outcome.refused = 0  # logged only, as shadow does: nothing turned them down
    return Reply(outcome.summary(burst.minutes) + kept, public=True)


def _play(
    services: Services,
    heroku: FakeHeroku,
    queue: JobQueue,
    say: Say,
    app: str,
    name: str,
    channel: str | None,
    burst: Burst,
) -> QueueOutcome:
    began = time.monotonic()
    start = heroku.now
    outcome = QueueOutcome(app, start, workers=[_formation(heroku, name)])
    clock = {"now": start}

    def notify(where: str | None, text: str) -> None:
        say(where, f"{_stamp(clock['now'], start)}  {text}")

    scaler = WorkerAutoscaler(services, Autoscaler(services, notify))
    say(
        channel,
        f"{_stamp(start, start)}  Playing {burst.minutes} minutes of jobs against `{app}`: "
        f"{burst.per_minute:,} jobs a minute from minute {burst.start:g} to {burst.end:g}, "
        f"then none. A job takes a worker dyno {1 / queue.per_dyno:g} s, and a new dyno "
        f"takes {BOOT_SECONDS:.0f} s to boot; the autoscaler reads the app's HireFire endpoint "
        f"(which reports the {_reported(queue)} for `{PROCESS}`) every {STEP_SECONDS} s.",
    )
    steps_per_minute = 60 // STEP_SECONDS
    saved_boot = heroku.boot_seconds
    heroku.boot_seconds = BOOT_SECONDS
    carry = 0.0
    try:
        for step in range(burst.minutes * steps_per_minute):
            minute = step * STEP_SECONDS / 60
            for _ in range(STEP_SECONDS):
                # A second at a time, so jobs arrive and finish through the step.
                carry += burst.jobs(minute) / 60
                arriving = int(carry)
                carry -= arriving
                queue.enqueue(arriving, heroku.now)
                outcome.enqueued += arriving
                up = _up(heroku, name)
                now = heroku.advance(1)
                outcome.done += queue.drain(1, up)
                outcome.peak_latency = max(outcome.peak_latency, queue.latency())
                outcome.peak_waiting = max(outcome.peak_waiting, queue.waiting())
            clock["now"] = now
            if (step + 1) % steps_per_minute == 0:
                say(channel, f"{_stamp(now, start)}  {_queue_line(heroku, name, queue)}")
            for decision in scaler.tick(now, only=app):
                if decision.process_type != PROCESS:
                    continue
                if decision.desired == decision.actual:
                    outcome.held_busy += "in progress" in decision.reason
                elif not decision.acted:
                    outcome.refused += 1
                elif decision.desired > decision.actual:
                    outcome.ups += 1
                else:
                    outcome.downs += 1
            outcome.workers.append(_formation(heroku, name))
    finally:
        heroku.boot_seconds = saved_boot
    outcome.wall_seconds = time.monotonic() - began
    return outcome


def _reported(queue: JobQueue) -> str:
    return "job queue latency" if queue.reports == "latency" else "jobs waiting"


def _formation(heroku: FakeHeroku, name: str) -> int:
    return heroku.formation(name).get(PROCESS, (0, ""))[0]


def _up(heroku: FakeHeroku, name: str) -> int:
    return sum(1 for d in heroku.dynos(name) if d["type"] == PROCESS and d["state"] == "up")


def _queue_line(heroku: FakeHeroku, name: str, queue: JobQueue) -> str:
    dynos = [d for d in heroku.dynos(name) if d["type"] == PROCESS]
    up = sum(1 for d in dynos if d["state"] == "up")
    booting = sum(1 for d in dynos if d["state"] == "starting")
    workers = f"worker {up} up" + (f", {booting} booting" if booting else "")
    return (
        f"queue {queue.waiting():,} jobs waiting · latency {queue.latency():,.0f} s · "
        f"{queue.running()} running · {workers}"
    )
