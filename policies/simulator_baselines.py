"""The autoscaling policies `policies.simulator` compares, each as the simulator drives it.

- `ours`: `policies.autoscale.decide` as the worker calls it, on the drain's freshest
  request rate, predictive on, with every default (`ours_settings`): what an app gets with
  no tuning, the adaptive scale-down stabilization included. It is fed the last
  `NOISE_SPAN` (30 minutes) of samples, as the worker is.
- `hpa`: the same calculator with the Kubernetes HPA's defaults and nothing of ours: 15 s
  sync, 10 % tolerance, 5 min scale-down stabilization, up by 100 % or 4 per 15 s, down by
  100 % per 15 s, no boot cooldown, no forecast, one reading of the metric, which is the
  request rate over the last minute (as an adapter's `rate(...[1m])` gives it). It reads
  the formation every sync, as the HPA reads the scale subresource.
- `hirefire`: HireFire's documented defaults: a checkup every 60 s, the formation cached
  for 10 minutes, one dyno up when the p95 queue time is over the upper threshold and one
  down when it is under the lower one.
- `judoscale`: Judoscale's: checks every 10 s (here every 15 s tick), one dyno up when the
  p95 queue time is over the range and no upscale in the last 3 minutes, one dyno down
  once every metric has stayed under the range for 10 minutes, then one every 10 minutes.
- `heroku`: Heroku's native autoscaling: events at least a minute apart, one dyno each,
  from the p95 response time; down only when the past hour's data say one dyno fewer
  carries the current throughput within the threshold (its "scales down less
  aggressively"). It runs inside Heroku and costs the account no API calls.
- `static`: the peak's dyno count, all the time.
- `optimum`: the fewest dyno-hours with no SLO violation, knowing the whole future.

The products' thresholds are what their users choose; every one gets the same: the upper
is the SLO (300 ms p95 queue time; for Heroku, that plus the p95 service time) and the
lower a third of it. `ours` and `hpa` take a requests-per-dyno target instead, the same for
both: what a load test says one dyno carries within the SLO, less the HPA's 10 % tolerance.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from policies.autoscale import (
    NOISE_SPAN,
    Decision,
    Forecast,
    Recommendation,
    Sample,
    ScaleEvent,
    Settings,
    Target,
    decide,
    forecast_base,
    forecast_growth,
    forecast_skill,
)
from policies.simulator import Context, Observation, Policy


def user_rpm_target(context: Context) -> float:
    """The requests-per-dyno target a user with a load test would set: the most one dyno
    carries within the SLO, less 10 % so the tolerance band's upper edge stays inside it."""
    return round(context.rpm_per_dyno_at_slo / 1.1)


def ours_settings(context: Context) -> Settings:
    """Ours for the benchmark: what an app gets with no tuning (the worker's
    `policy_settings`: every default, predictive on), with the user's rpm target."""
    model = context.model
    return Settings(
        targets=(Target("rpm_per_dyno", user_rpm_target(context)),),
        min_dynos=model.min_dynos,
        max_dynos=model.max_dynos,
        predictive=True,
    )


def hpa_settings(context: Context) -> Settings:
    model = context.model
    return Settings(
        targets=(Target("rpm_per_dyno", user_rpm_target(context)),),
        tolerance=0.10,
        min_dynos=model.min_dynos,
        max_dynos=model.max_dynos,
        up_max_percent=100.0,
        up_max_dynos=4,
        down_max_percent=100.0,
        down_max_dynos=0,
        down_stabilization=timedelta(minutes=5),
        boot_cooldown=timedelta(0),
        deploy_guard=timedelta(0),
        smoothing=timedelta(0),
        predictive=False,
    )


class MinuteHistory(Mapping[int, float]):
    """The traffic's own per-minute history as `policies.autoscale` reads it (epoch minute
    to requests), up to the last whole minute before `now`: the same whatever a policy
    did, since the router counts every request, served or queued."""

    def __init__(self, context: Context) -> None:
        self.per_minute = 60 // context.model.tick_s
        self.first = int(context.start.timestamp() // 60)
        self.minute_rpm = context.minute_rpm
        self.upto = -1  # the last tick whose minute may be read

    def get(self, minute: int, default: float | None = None) -> float | None:  # type: ignore[override]
        k = (minute - self.first + 1) * self.per_minute - 1
        if 0 <= k <= self.upto:
            return self.minute_rpm[k]
        return default

    def __getitem__(self, minute: int) -> float:
        value = self.get(minute)
        if value is None:
            raise KeyError(minute)
        return value

    def __iter__(self) -> Iterator[int]:
        last = (self.upto + 1) // self.per_minute
        return iter(range(self.first, self.first + last))

    def __len__(self) -> int:
        return (self.upto + 1) // self.per_minute


class Autoscaler(Policy):
    """`policies.autoscale.decide`, fed the way the worker feeds it."""

    # The forecast's skill moves over hours; the worker need not recompute it every tick.
    skill_every_s = 900.0

    def __init__(
        self,
        name: str,
        context: Context,
        settings: Settings,
        reads_every_s: float | None,
        *,
        fresh: bool = True,
    ) -> None:
        self.name = name
        self.fresh = fresh
        self.reads_every_s = reads_every_s
        self.settings = settings
        tick = context.model.tick_s
        window = settings.down_stabilization or settings.down_stabilization_max
        keep = int(window.total_seconds() // tick) + 1
        span = int(NOISE_SPAN.total_seconds())
        self.samples: deque[Sample] = deque(maxlen=max(span // tick, 1))
        # With `fresh`, as the worker feeds `decide` (`bot.worker.autoscale._samples_of`):
        # one sample per whole minute, then the freshest rate. Fed every tick's fresh rate
        # instead, a minute's rate mixed 20 s windows of two minutes and the noise the
        # policy measured was under half the real one (the closed loop cannot see this: its
        # worker is fed properly).
        self.minutes: deque[Sample] = deque(maxlen=max(span // 60, 1))
        self.per_minute = 60 // tick
        self.lag = timedelta(seconds=context.model.drain_lag_steps * tick)
        self.recommendations: deque[Recommendation] = deque(maxlen=keep)
        self.events: deque[ScaleEvent] = deque(maxlen=4)
        self.history = MinuteHistory(context)
        self.skill: float | None = None
        self.skill_at = -math.inf
        self.last: Decision | None = None

    def tick(self, obs: Observation) -> int:
        now = obs.now
        if self.fresh:
            if (obs.step + 1) % self.per_minute == 0:
                whole = Sample(now, obs.rpm, obs.queue_p95_ms, obs.service_p95_ms, obs.ready)
                self.minutes.append(whole)
            # The drain keeps 10 s windows, so the rate can be that fresh (its window ends a
            # drain lag before the tick: stamped there, or at the last whole minute's end
            # when it lies within that minute, as the worker stamps it); a p95 needs the
            # minute.
            at = max(now - self.lag, self.minutes[-1].at) if self.minutes else now
            fresh = Sample(at, obs.rpm_now, obs.queue_p95_ms, obs.service_p95_ms, obs.ready)
            samples: Sequence[Sample] = [*self.minutes, fresh]
        else:
            sample = Sample(now, obs.rpm, obs.queue_p95_ms, obs.service_p95_ms, obs.ready)
            self.samples.append(sample)
            samples = self.samples
        forecast = None
        if self.settings.predictive:
            self.history.upto = obs.step
            growth = forecast_growth(self.settings, self.history, now)
            if obs.seconds - self.skill_at >= self.skill_every_s:
                self.skill = forecast_skill(self.settings, self.history, now)
                self.skill_at = obs.seconds
            if growth is not None and self.skill is not None:
                base = forecast_base(self.history, now)
                forecast = Forecast(growth, self.skill, base)
        decision = decide(
            self.settings,
            obs.current,
            samples,
            now,
            recommendations=self.recommendations,
            events=self.events,
            booting=obs.booting,
            forecast=forecast,
        )
        self.recommendations.append(Recommendation(now, decision.recommendation))
        if decision.desired != obs.current:
            self.events.append(ScaleEvent(now, obs.current, decision.desired))
        self.last = decision
        return decision.desired


class HireFire(Policy):
    name = "hirefire"
    reads_every_s = 600.0  # HireFire caches the formation for 10 minutes

    def __init__(self, context: Context) -> None:
        model = context.model
        self.upper, self.lower = model.slo_ms, model.slo_ms / 3
        self.every = 60.0
        self.low, self.high = model.min_dynos, model.max_dynos

    def tick(self, obs: Observation) -> int:
        if obs.seconds % self.every:
            return obs.current
        if obs.queue_p95_ms > self.upper:
            return min(obs.current + 1, self.high)
        if obs.queue_p95_ms < self.lower:
            return max(obs.current - 1, self.low)
        return obs.current


class Judoscale(Policy):
    name = "judoscale"
    reads_every_s = 600.0  # not documented; assumed to cache like HireFire

    def __init__(self, context: Context) -> None:
        model = context.model
        self.upper, self.lower = model.slo_ms, model.slo_ms / 3
        self.upscale_every = 180.0
        self.downscale_delay = 600.0
        self.low, self.high = model.min_dynos, model.max_dynos
        self.last_up = self.last_down = -math.inf
        self.below_since: float | None = None

    def tick(self, obs: Observation) -> int:
        now, q = obs.seconds, obs.queue_p95_ms
        if q > self.upper:
            self.below_since = None
            if now - self.last_up >= self.upscale_every and obs.current < self.high:
                self.last_up = now
                return obs.current + 1
            return obs.current
        if q >= self.lower:
            self.below_since = None
            return obs.current
        if self.below_since is None:
            self.below_since = now
        settled = now - self.below_since >= self.downscale_delay
        if settled and now - self.last_down >= self.downscale_delay and obs.current > self.low:
            self.last_down = now
            return obs.current - 1
        return obs.current


class HerokuNative(Policy):
    name = "heroku"
    reads_every_s = None

    def __init__(self, context: Context) -> None:
        model = context.model
        self.threshold = model.slo_ms + model.service_p95_ms
        self.every = 60.0
        self.low, self.high = model.min_dynos, model.max_dynos
        # Per minute of the past hour: the throughput per dyno that met the threshold.
        self.history: deque[tuple[float, float]] = deque()

    def tick(self, obs: Observation) -> int:
        if obs.seconds % self.every:
            return obs.current
        met = obs.response_p95_ms <= self.threshold
        if met and obs.ready > 0:
            self.history.append((obs.seconds, obs.rpm / obs.ready))
        while self.history and self.history[0][0] <= obs.seconds - 3600:
            self.history.popleft()
        if not met:
            return min(obs.current + 1, self.high)
        best = max((rate for _, rate in self.history), default=0.0)
        fewer = obs.current - 1
        if fewer >= self.low and obs.rpm <= 0.9 * best * fewer:
            return fewer
        return obs.current


class Static(Policy):
    name = "static"
    reads_every_s = None

    def __init__(self, context: Context) -> None:
        self.count = context.required(context.peak_rpm / 60)

    def start(self, context: Context) -> int:
        return self.count

    def tick(self, obs: Observation) -> int:
        return self.count


def plan_ahead(required: Sequence[int], span: int) -> list[int]:
    """The cheapest counts that have `required[m]` dynos ready at every step m when a dyno
    takes up to `span` steps to boot: at each step, the most required over the next span
    steps. A dyno ready at step m was started at the latest `span` steps before and billed
    since, so the count at step j must be at least required(m) for every m in [j, j +
    span]; and the sliding maximum over that window meets every constraint (stop the
    newest dynos first, as Heroku does, and the ones needed at m are all old enough).
    Computed backwards with a monotone queue in one pass."""
    plan = [0] * len(required)
    window: deque[int] = deque()  # indices of decreasing required counts
    for m in range(len(required) - 1, -1, -1):
        while window and required[window[-1]] <= required[m]:
            window.pop()
        window.append(m)
        while window[0] > m + span:
            window.popleft()
        plan[m] = required[window[0]]
    return plan


class Planned(Policy):
    """A policy that follows a count per step worked out before the run."""

    reads_every_s = None

    def __init__(self, name: str, plan: Sequence[int]) -> None:
        self.name, self.plan = name, list(plan)

    def start(self, context: Context) -> int:
        return self.plan[0]

    def tick(self, obs: Observation) -> int:
        # Decided at the end of step k, the count serves from step k + 1.
        nxt = obs.step + 1
        return self.plan[nxt] if nxt < len(self.plan) else self.plan[-1]


class Optimum(Planned):
    """The offline optimum, knowing the whole trace and planning for the longest boot.

    As a dynamic programme: the state is the count billed at each step, the cost the sum
    of counts, the constraint that each step has `required` dynos ready. Its value
    function collapses to `plan_ahead`'s window maximum. Boot delays are drawn at random
    by the simulator, so the plan assumes the longest (60 s); where even that cannot help
    (the first steps), the run starts with the count the first steps need.
    """

    def __init__(self, context: Context) -> None:
        need: dict[float, int] = {}
        required = []
        for rate in context.rates:
            if rate not in need:
                need[rate] = context.required(rate)
            required.append(need[rate])
        super().__init__("optimum", plan_ahead(required, context.model.boot_steps))


POLICIES: dict[str, Callable[[Context], Policy]] = {
    "ours": lambda c: Autoscaler("ours", c, ours_settings(c), reads_every_s=600.0),
    "hirefire": HireFire,
    "judoscale": Judoscale,
    "heroku": HerokuNative,
    "hpa": lambda c: Autoscaler("hpa", c, hpa_settings(c), reads_every_s=15.0, fresh=False),
    "static": Static,
    "optimum": Optimum,
}


def own_settings(
    context: Context,
    target: Target | None = None,
    low: int | None = None,
    high: int | None = None,
    down_stabilization: timedelta | None = None,
) -> Settings:
    """`ours` with an app's own settings, for replaying its stored traffic: what is not
    given is the benchmark's (the model's load-tested rpm target, the adaptive window)."""
    settings = ours_settings(context)
    return replace(
        settings,
        targets=(target,) if target is not None else settings.targets,
        min_dynos=settings.min_dynos if low is None else low,
        max_dynos=settings.max_dynos if high is None else high,
        down_stabilization=down_stabilization,
    )


def make_policy(name: str, context: Context) -> Policy:
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; try one of {', '.join(POLICIES)}") from None
    return factory(context)
