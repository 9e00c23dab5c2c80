"""`/deploy simulate spike APP` in the sandbox: twenty minutes of made-up traffic against a
fake Heroku app, played in a few seconds, with the real autoscaler reacting to it.

Each 15 s step (the worker's tick) writes the Heroku router lines that step's requests would
log, with queue and service times from `policies.simulator`'s dyno model at the web dynos that are
up on the fake Heroku; the lines take the drain's own path (`DrainIntake` ▸ `Aggregator` ▸
`Flusher` ▸ `MetricsStore`), the fake's clock moves on 15 s and `Autoscaler.tick` runs at
that time. What the autoscaler posts to the app's channel goes to `say` as it happens, with
the simulated time, and so does a line of traffic a minute, so the reader sees what it is
reacting to. Nothing sleeps: the simulated clock is the fake Heroku's.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.actions.results import Reply, Result
from bot.platforms.base import PlatformError
from bot.registry import UnknownApp
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.services import Services
from bot.store.audit import Actor
from bot.store.autoscale_settings import AutoscaleStore
from bot.web.log_drain import DrainIntake, Flusher
from bot.worker.autoscale import Autoscaler
from bot.worker.detectors import Detectors
from policies import incidents
from policies.commands import Command, parse
from policies.incidents import Incident
from policies.simulator import Model, wait_tail
from policies.sizes import SINGLE_DYNO_SIZES

# `say(channel, text)`: post to the app's channel (None: it has none, say it where asked).
Say = Callable[[str | None, str], None]

STEP_SECONDS = 15  # the worker's autoscale tick
# The autoscaler reads the last six minutes of traffic: the drain has been seeing the
# baseline for that long before the play starts, so its first ticks are not "stale".
WARMUP_MINUTES = 6
# Stored traffic or decisions this close before the start would mix into the play (the
# autoscaler looks back ten minutes): start after them instead.
QUIET_BEFORE = timedelta(minutes=10)
BOOT_SECONDS = 45.0  # Heroku web dynos take 30–60 s to boot
# What the play turns autoscaling on with: the model's SLO as the target.
AUTOSCALE_MAX = 8
AUTOSCALE_TARGET = "queue:300ms"
FRAMES_PER_BODY = 500  # logplex batches lines; the size changes nothing downstream
_PATHS = ("/", "/products", "/cart", "/api/items", "/search?q=boots")


@dataclass(frozen=True)
class Shape:
    """The traffic: `baseline_rpm`, rising to `factor` times it and falling back, in minutes
    from the start of the play."""

    baseline_rpm: float = 500.0
    factor: float = 5.0
    minutes: int = 20
    rise: tuple[float, float] = (3.0, 4.0)  # from baseline to the peak
    fall: tuple[float, float] = (10.0, 11.0)  # from the peak back to baseline

    def rpm(self, minute: float) -> float:
        peak = self.baseline_rpm * self.factor
        if minute < self.rise[0] or minute >= self.fall[1]:
            return self.baseline_rpm
        if minute < self.rise[1]:
            share = (minute - self.rise[0]) / (self.rise[1] - self.rise[0])
        elif minute < self.fall[0]:
            share = 1.0
        else:
            share = 1 - (minute - self.fall[0]) / (self.fall[1] - self.fall[0])
        return self.baseline_rpm + share * (peak - self.baseline_rpm)


@dataclass
class Outcome:
    """What happened during one play; `summary()` is the paragraph the command answers."""

    app: str
    started: datetime
    ended: datetime | None = None
    web: list[int] = field(default_factory=list)  # the web formation at the start and each tick
    minute_rpm: list[int] = field(default_factory=list)
    minute_queue_ms: list[float] = field(default_factory=list)  # p95, each minute
    ups: int = 0
    downs: int = 0
    refused: int = 0  # decisions to scale that a guardrail or the platform turned down
    timeouts: int = 0  # requests the router gave up on (H12) or had no dyno for (H14)
    alerts: int = 0  # alerts the worker's detectors raised in the channel
    wall_seconds: float = 0.0
    decided: bool = True  # the autoscaler recorded decisions (not with autoscaling off)

    def summary(self) -> str:
        shape = self.web or [0]
        ended = self.ended or self.started
        actions = self.ups + self.downs
        if actions:
            acted = (
                f"in {actions} scale action{'s' if actions != 1 else ''} by the autoscaler "
                f"({self.ups} up, {self.downs} down)"
            )
        else:
            acted = "with no scale action by the autoscaler"
        started = f"; {shape[0]} at the start" if shape[0] != min(shape) else ""
        queue = max(self.minute_queue_ms, default=0.0)
        # Capacity caught up only if dynos were added: not with autoscaling off or shadow.
        lost = (
            f", and {self.timeouts:,} requests failed (H12/H14) "
            + ("while capacity caught up" if self.ups else "as no web dynos were added")
            if self.timeouts
            else ""
        )
        alerts = (
            f" The worker's detectors raised {self.alerts} alert{'s' if self.alerts != 1 else ''}"
            " (shown above; a play keeps none, so `/deploy alerts` does not list them)."
            if self.alerts
            else ""
        )
        refused = (
            f" {self.refused} decision{'s' if self.refused != 1 else ''} to scale "
            "could not be carried out (see the messages above)."
            if self.refused
            else ""
        )
        return (
            f"Played {len(self.minute_rpm)} simulated minutes of traffic against `{self.app}` "
            f"({self.started:%H:%M}–{ended:%H:%M} UTC on the sandbox clock) in "
            f"{self.wall_seconds:.1f} s: peak {max(self.minute_rpm, default=0):,} rpm. "
            f"Web dynos {min(shape)} → {max(shape)} → {shape[-1]} (fewest → most → at the "
            f"end{started}) {acted}; the p95 queue time peaked at "
            f"{_ms(queue)}{lost}.{alerts}{refused}"
            + (f" `/deploy autoscale {self.app} status` lists the latest decisions." * self.decided)
        )


def simulate(
    services: Services,
    heroku: FakeHeroku,
    say: Say,
    actor: Actor,
    command: Command,
    *,
    shape: Shape | None = None,
    seed: int = 0,
) -> Result:
    """`/deploy simulate spike APP`: turn autoscaling on if never set, play, summarize."""
    app = command.app or ""
    try:
        resolved = services.resolve(app)
    except (UnknownApp, PlatformError) as error:
        return Reply(str(error))
    name = resolved.target.name
    if resolved.target.platform != "heroku" or not _has(heroku, name):
        return Reply(
            "`/deploy simulate` plays traffic against the sandbox's fake Heroku apps, such as "
            f"`demo`; `{app}` is not one of them."
        )
    _, size = heroku.formation(name).get("web", (0, ""))
    if size.lower() in SINGLE_DYNO_SIZES:
        return Reply(
            f"`{app}` runs {size} web dynos, and Heroku never runs more than one of those per "
            "process type, so there is nothing to autoscale: try `/deploy simulate spike demo`."
        )
    channel = resolved.target.channel
    cap = resolved.target.guardrails.most("web")
    high = min(AUTOSCALE_MAX, cap) if cap else AUTOSCALE_MAX
    on = f"autoscale {app} on min=1 max={high} target={AUTOSCALE_TARGET}"
    settings = AutoscaleStore(services.db).settings(app)
    refused, kept = autoscaling_for_play(services, actor, say, channel, settings, "Autoscaling", on)
    if refused is not None:
        return refused  # its reason is the answer
    if settings is not None and settings.mode != "off" and settings.target_kind == "service_p95":
        say(channel, _blind_target(app))
    outcome = SpikePlayer(services, heroku, say, shape=shape, seed=seed).play(app, name, channel)
    if settings is not None and settings.mode == "shadow":
        outcome.refused = 0  # logged only, as shadow does: nothing turned them down
    # Off, the autoscaler decides nothing, so there are no decisions to point to.
    outcome.decided = settings is None or settings.mode != "off"
    return Reply(outcome.summary() + kept, public=True)


def _blind_target(app: str) -> str:
    """What a service-time target sees of the play: the model's dynos serve each request in
    the same time however busy they are (the wait is in the router's queue), so nothing."""
    p95 = round(Model().service_p95_ms, -2)
    return (
        f"Its target is the p95 service time, which in this sandbox stays near {p95:.0f} ms "
        "however many dynos run (a spike makes requests wait in the router's queue instead), "
        f"so the autoscaler sees no spike: `/deploy autoscale {app} on "
        f"target={AUTOSCALE_TARGET}` plays one."
    )


class _Setting(Protocol):
    app: str
    mode: str
    updated_by: str

    def describe(self) -> str: ...


def autoscaling_for_play(
    services: Services,
    actor: Actor,
    say: Say,
    channel: str | None,
    settings: _Setting | None,
    what: str,
    on: str,
    ptype: str = "",
) -> tuple[Result | None, str]:
    """Autoscaling for a play: turned on with `on` (a command) when nobody has set it. A
    mode someone chose (off, shadow) is theirs: the play leaves it, says so as it starts
    and in its summary, with `autoscale APP [ptype] on`, which keeps the rest of
    their settings. Returns the refusal to answer with (or None), and what the play's
    summary adds (or "")."""
    if settings is None:
        # The person's own `autoscale` command, so the gate, the audit trail and the reply
        # are the ones it always has; no request key, as it is part of this command.
        turned_on = services.actions.run(replace(actor, request_key=None), parse(on))
        if not (isinstance(turned_on, Reply) and turned_on.public):
            return turned_on, ""
        say(channel, turned_on.text.split(" No worker runs")[0])
        return None, ""
    if settings.mode == "on":
        say(
            channel,
            f"{what} of `{settings.app}` is already on ({settings.describe()}): playing with it.",
        )
        return None, ""
    app, mode = settings.app, settings.mode
    does = "only logs what it would do" if mode == "shadow" else "does nothing"
    say(channel, f"{what} of `{app}` is {mode}, as <@{settings.updated_by}> set it: playing as is.")
    turn_on = " ".join(["/deploy autoscale", app, *([ptype] if ptype else []), "on"])
    return None, (
        f" {what} stayed {mode}, so the autoscaler {does}; `{turn_on}` turns it on, keeping "
        "the other settings."
    )


class SpikePlayer:
    """Plays a `Shape` of traffic against one fake Heroku app while the autoscaler ticks."""

    def __init__(
        self,
        services: Services,
        heroku: FakeHeroku,
        say: Say,
        *,
        shape: Shape | None = None,
        model: Model | None = None,
        seed: int = 0,
    ) -> None:
        self._services = services
        self._heroku = heroku
        self._say = say
        self.shape = shape or Shape()
        self._model = model or Model()
        self._seed = seed

    def play(self, app: str, name: str, channel: str | None) -> Outcome:
        """Play the shape against `app` (the fake Heroku's `name`), posting as it goes."""
        began = time.monotonic()
        start = self._start(app)
        outcome = Outcome(app, start, web=[self._web(name)])
        intake = DrainIntake(self._services.db, self._services.drain_claims)
        flusher = Flusher(intake.aggregator, self._services.metrics)
        traffic = _Traffic(self._model, random.Random(f"spike/{self._seed}"), app, name)
        warmup = int(WARMUP_MINUTES * 60 / STEP_SECONDS)
        for step in range(-warmup, 0):
            at = start + timedelta(seconds=step * STEP_SECONDS)
            traffic.step(intake, at, self.shape.baseline_rpm, self._up(name))
        flusher.flush()
        traffic.reset_minute()

        clock = {"now": start}

        def notify(where: str | None, text: str) -> None:
            self._say(where, f"{_stamp(clock['now'], start)}  {text}")

        scaler = Autoscaler(self._services, notify)
        watch = _Watch(Detectors.from_services(self._services), app, channel)
        steps_per_minute = 60 // STEP_SECONDS
        self._say(
            channel,
            f"{_stamp(start, start)}  Playing {self.shape.minutes} minutes of traffic against "
            f"`{app}`: {self.shape.baseline_rpm:,.0f} rpm, a ×{self.shape.factor:g} spike from "
            f"minute {self.shape.rise[0]:g} to {self.shape.fall[1]:g}, then back down. The "
            f"autoscaler ticks every {STEP_SECONDS} s; new web dynos take "
            f"{BOOT_SECONDS:.0f} s to boot.",
        )
        saved_boot = self._heroku.boot_seconds
        self._heroku.boot_seconds = BOOT_SECONDS
        try:
            for step in range(self.shape.minutes * steps_per_minute):
                at = start + timedelta(seconds=step * STEP_SECONDS)
                rpm = self.shape.rpm(step * STEP_SECONDS / 60)
                traffic.step(intake, at, rpm, self._up(name))
                flusher.flush()
                now = self._heroku.advance(STEP_SECONDS)
                clock["now"] = now
                if (step + 1) % steps_per_minute == 0:
                    # The minute just ended, before the tick that reads it.
                    requests, queue_ms, lost = traffic.reset_minute()
                    outcome.minute_rpm.append(requests)
                    outcome.minute_queue_ms.append(queue_ms)
                    outcome.timeouts += lost
                    self._say(
                        channel,
                        f"{_stamp(now, start)}  {self._traffic_line(name, requests, queue_ms, lost)}",
                    )
                if step % steps_per_minute == 0 and step > 0:
                    # The worker's watch job, once a minute, a tick after the minute ended
                    # so the minute is settled (`DetectorRules.settle`).
                    for text in watch(now):
                        self._say(channel, f"{_stamp(now, start)}  {text}")
                # Only the played app: the play's clock runs ahead of every other app's.
                for decision in scaler.tick(now, only=app):
                    if decision.desired == decision.actual:
                        continue
                    if not decision.acted:
                        outcome.refused += 1
                    elif decision.desired > decision.actual:
                        outcome.ups += 1
                    else:
                        outcome.downs += 1
                outcome.web.append(self._web(name))
        finally:
            self._heroku.boot_seconds = saved_boot
        outcome.ended = self._heroku.now
        outcome.alerts = watch.opened
        outcome.wall_seconds = time.monotonic() - began
        return outcome

    def _start(self, app: str) -> datetime:
        """A whole minute on the fake's clock, after anything a previous play stored (the
        sandbox database outlives the fake, whose clock starts again at the wall clock)."""
        now = self._heroku.now
        latest = now - QUIET_BEFORE
        stamp = int(now.timestamp())
        ahead = self._services.metrics.windows(app, stamp - 600, stamp + 7 * 86400)
        if ahead:
            latest = max(latest, datetime.fromtimestamp(ahead[-1].end, UTC))
        decided = AutoscaleStore(self._services.db).decisions(app, limit=1)
        if decided:
            latest = max(latest, decided[0].at)
        target = max(now, latest + QUIET_BEFORE)
        target = (target + timedelta(seconds=59)).replace(second=0, microsecond=0)
        if target > now:
            self._heroku.advance((target - now).total_seconds())
        return target

    def _web(self, name: str) -> int:
        return self._heroku.formation(name).get("web", (0, ""))[0]

    def _up(self, name: str) -> list[str]:
        """Web dynos the router sends requests to: those `up`, not still booting."""
        return [
            d["name"] for d in self._heroku.dynos(name) if d["type"] == "web" and d["state"] == "up"
        ]

    def _traffic_line(self, name: str, requests: int, queue_ms: float, lost: int) -> str:
        dynos = [d for d in self._heroku.dynos(name) if d["type"] == "web"]
        up = sum(1 for d in dynos if d["state"] == "up")
        booting = sum(1 for d in dynos if d["state"] == "starting")
        web = f"web {up} up" + (f", {booting} booting" if booting else "")
        failed = f" · {lost:,} failed" if lost else ""
        return f"traffic {requests:,} rpm · p95 queue {_ms(queue_ms)}{failed} · {web}"


class _Watch:
    """The worker's watch job for the played app: its detectors' events folded into
    incidents by the same policy (`policies.incidents.step`), kept in memory so a play
    leaves no alert behind for the sandbox's worker to send. Returns the texts that would
    appear in the channel: each new alert, and its message once resolved."""

    def __init__(self, detectors: Detectors, app: str, channel: str | None) -> None:
        self._detectors = detectors
        self._app = app
        self._channel = channel or "console"
        self._known: dict[str, Incident] = {}
        self.opened = 0  # alerts posted

    def __call__(self, now: datetime) -> list[str]:
        events = self._detectors.run(now, only=self._app)
        step = incidents.step(
            self._known,
            events,
            now,
            lambda _: self._channel,
            unobserved=self._detectors.unobserved,
        )
        self._known.update((incident.key, incident) for incident in step.incidents)
        shown = []
        for notice in step.notices:
            incident = self._known.get(notice.key)
            resolved = incident is not None and incident.state == "resolved"
            if notice.kind == "post" or (notice.kind == "update" and resolved):
                shown.append(notice.text)
                self.opened += notice.kind == "post"
        return shown


class _Traffic:
    """The dyno model between steps: a fluid backlog when requests come faster than the up
    dynos serve them (as `policies.simulator.run` keeps it), and the minute's waits so far."""

    def __init__(self, model: Model, rng: random.Random, app: str, name: str) -> None:
        self._model = model
        self._rng = rng
        self._app = app
        self._host = f"{name}.herokuapp.com"
        self._backlog = 0.0
        self._count = 0
        self._waits: list[float] = []
        self._lost = 0

    def reset_minute(self) -> tuple[int, float, int]:
        """Requests, p95 queue time (ms) and failed requests since the last call."""
        waits = sorted(self._waits)
        p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)] if waits else 0.0
        counted = (self._count, p95, self._lost)
        self._count, self._waits, self._lost = 0, [], 0
        return counted

    def step(self, intake: DrainIntake, at: datetime, rpm: float, up: Sequence[str]) -> None:
        """Log STEP_SECONDS of requests at `rpm` from `at`, and hand them to the drain."""
        model, rng = self._model, self._rng
        mean = rpm / 60 * STEP_SECONDS
        # Poisson arrivals, by the normal approximation (as `policies.simulator` draws them).
        count = max(0, round(rng.gauss(mean, math.sqrt(mean)))) if mean > 0 else 0
        rate = count / STEP_SECONDS
        full = len(up) * model.capacity_rps
        if self._backlog == 0.0 and rate <= full:
            delay = 0.0
        elif full > 0:
            after = min(
                max(0.0, self._backlog + (rate - full) * STEP_SECONDS), model.timeout_s * full
            )
            delay = min((self._backlog + after) / 2 / full, model.timeout_s)
            self._backlog = after
        else:
            delay = model.timeout_s
        p, decay = wait_tail(model, rate, len(up)) if up else (1.0, 0.0)
        base = at.timestamp()
        frames: list[bytes] = []
        for i in range(count):
            stamp = datetime.fromtimestamp(base + rng.uniform(0, STEP_SECONDS), UTC)
            when = stamp.isoformat(timespec="microseconds")
            request = (
                f'method=GET path="{rng.choice(_PATHS)}" host={self._host} '
                f'request_id=spike-{int(base)}-{i:05d} fwd="203.0.113.{i % 250 + 1}"'
            )
            if not up:
                self._lost += 1
                frames.append(
                    _frame(
                        f"<158>1 {when} host heroku router - at=error code=H14 "
                        f'desc="No web dynos running" {request} dyno= connect= service= '
                        "status=503 bytes= protocol=https"
                    )
                )
                continue
            dyno = rng.choice(up)
            wait = delay + (rng.expovariate(decay) if decay > 0 and rng.random() < p else 0.0)
            service = wait + rng.expovariate(1 / model.service_s)
            if service >= model.timeout_s:
                self._lost += 1
                frames.append(
                    _frame(
                        f"<158>1 {when} host heroku router - at=error code=H12 "
                        f'desc="Request timeout" {request} dyno={dyno} connect=1ms '
                        f"service={int(model.timeout_s * 1000)}ms status=503 bytes=0 protocol=https"
                    )
                )
                continue
            self._waits.append(wait * 1000)
            # The router's service time includes the wait inside the dyno; the queue time
            # is what the app logs itself, the HireFire way.
            frames.append(
                _frame(
                    f"<158>1 {when} host heroku router - at=info {request} dyno={dyno} "
                    f"connect=1ms service={round(service * 1000)}ms status=200 "
                    f"bytes={rng.randint(800, 40_000)} protocol=https"
                )
            )
            frames.append(
                _frame(
                    f"<190>1 {when} host app {dyno} - [hirefire:router] queue={round(wait * 1000)}ms"
                )
            )
        self._count += count
        for first in range(0, len(frames), FRAMES_PER_BODY):
            batch = frames[first : first + FRAMES_PER_BODY]
            intake.receive(self._app, {"Logplex-Msg-Count": str(len(batch))}, b"".join(batch))


def _frame(message: str) -> bytes:
    """One octet-counted logplex frame: the length counts the message and its newline."""
    data = message.encode() + b"\n"
    return b"%d %s" % (len(data), data)


def _has(heroku: FakeHeroku, name: str) -> bool:
    # The fake has no public list of its apps, but every app has a formation.
    try:
        heroku.formation(name)
    except KeyError:
        return False
    return True


def _stamp(now: datetime, start: datetime) -> str:
    elapsed = int((now - start).total_seconds())
    return f"{now:%H:%M:%S} (+{elapsed // 60}:{elapsed % 60:02d})"


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:,.0f} ms"
