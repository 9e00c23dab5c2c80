"""The autoscaling simulator's pure model: a traffic trace replayed through a model of
Heroku web dynos under one policy (`deploybot simulate`, `bot/simulate.py`, reads the file
and prints; `policies.simulator_baselines` holds the policies it compares).

The trace is a CSV `timestamp,value` (value = events in the interval ending at timestamp,
see ../shared/traces/README.md). Its peak interval is scaled to `--peak-rpm` requests per
minute and each interval's count is spread evenly over the interval.

The model, in 15 s steps (the worker's tick):
- A dyno serves `concurrency` requests at once, each taking an exponential time of mean
  `service_s`; Heroku's router sends each request to a random dyno, so each ready dyno is
  an M/M/c queue fed a 1/n share of the traffic. Queue wait then has a closed form: it is
  0 with probability 1 - C and Exp(c*mu - lambda) otherwise (C: the Erlang C formula), which
  gives the p95 queue time as a function of utilisation. Above `rho_cap` utilisation the
  steady state is taken at `rho_cap`, and traffic beyond capacity piles up as a fluid
  backlog that adds backlog / capacity seconds of wait until it drains (the router drops
  what would wait over 30 s, as H12 does).
- A started dyno is billed at once and serves after a boot delay drawn uniformly from
  30-60 s (seeded); a dyno that becomes ready within a step serves that fraction of it.
  Scaling down stops the newest dynos first, as Heroku stops the highest-numbered ones.
- Every tick the policy sees what the bot would: the last minute's p95 queue time (the
  p95 of the four steps' wait distributions mixed by their requests), the requests
  counted in the last minute and the freshest rate the drain has, 20 s ending with the
  step before the last (`fresh_rpm`; Poisson noise around the rate, the same draw for every policy;
  the queue itself follows the rate), the p95 service time, and the formation's quantity,
  ready and booting counts. `make bench-closed-loop` checks these against the real web
  and worker processes (the closed loop found that the tick read whole minutes only, and
  that the simulator's freshest rate was fresher than any drain can be).

Results: `dyno_hours` (billed, booting included), `slo_violation_minutes` (clock minutes
whose p95 queue time exceeds `slo_ms`), `scale_actions` (formation writes) and
`api_calls` (formation reads the policy needs plus its writes, against Heroku's 4,500
requests per hour per account). Policies are in `policies.simulator_baselines`.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

# Share of requests allowed to wait longer than the reported value.
_TAIL = 0.05
# A target this close to a whole dyno count is that count (float noise in rate / capacity).
_EPSILON = 1e-9


@dataclass(frozen=True)
class Model:
    concurrency: int = 4  # requests one dyno serves at once (e.g. 2 processes x 2 threads)
    service_s: float = 0.2  # mean service time; a dyno's capacity is 4 / 0.2 s = 1,200 rpm
    slo_ms: float = 300.0  # the SLO: p95 queue time over each clock minute
    tick_s: int = 15
    boot_min_s: float = 30.0
    boot_max_s: float = 60.0
    rho_cap: float = 0.97  # utilisation beyond which the backlog, not the formula, rules
    timeout_s: float = 30.0  # Heroku's router gives up on a request after 30 s (H12)
    # The freshest rate the tick reads (`bot.worker.autoscale`): the last two 10 s drain
    # windows that ended at least 8 s before it (Logplex and the web dyno's 5 s flush), so
    # 20 s of requests ending 8-18 s before the tick. Modelled as the `fresh_span_s` that
    # end with the step before the last (`drain_lag_steps`).
    drain_lag_steps: int = 1
    fresh_span_s: float = 20.0
    min_dynos: int = 1
    max_dynos: int = 20
    seed: int = 0

    @property
    def capacity_rps(self) -> float:
        """Requests per second one dyno serves flat out."""
        return self.concurrency / self.service_s

    @property
    def service_p95_ms(self) -> float:
        return 1000 * self.service_s * math.log(1 / _TAIL)

    @property
    def boot_steps(self) -> int:
        """Ticks after which a dyno started at a tick surely serves."""
        return math.ceil(self.boot_max_s / self.tick_s)


@dataclass(frozen=True)
class Trace:
    name: str
    start: datetime  # the start of the first interval, UTC
    interval_s: int
    counts: tuple[float, ...]


@dataclass(frozen=True)
class Context:
    """Everything a policy may know before the run: the model, the scaled traffic (the
    offline optimum alone looks ahead in it), and what a load test would have told."""

    model: Model
    trace: Trace
    peak_rpm: float
    rates: tuple[float, ...]  # requests per second in each step
    rpm_per_dyno_at_slo: float  # the most one dyno carries within the SLO
    counted: tuple[float, ...] = field(repr=False, default=())  # requests logged per step
    minute_rpm: tuple[float, ...] = field(repr=False, default=())  # by step: the last minute's

    @property
    def start(self) -> datetime:
        return self.trace.start

    def required(self, rate_rps: float) -> int:
        """Fewest dynos that keep a step at `rate_rps` within the SLO."""
        return max(self.model.min_dynos, dynos_for(self.model, rate_rps))


@dataclass(slots=True)
class Observation:
    """What the bot sees at a tick. One object, updated in place every tick."""

    start: datetime  # of the trace
    step: int = 0  # the step that just ended
    seconds: float = 0.0  # since the start of the trace
    current: int = 0  # the formation's quantity
    ready: int = 0
    booting: int = 0
    rpm: float = 0.0  # requests in the last minute
    rpm_now: float = 0.0  # the freshest request rate, per minute (`Model.drain_lag_steps`)
    queue_p95_ms: float = 0.0
    service_p95_ms: float = 0.0

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    @property
    def response_p95_ms(self) -> float:
        # The p95 of a sum is at most the sum of the p95s; Heroku's own autoscaling sees
        # this (response) time, which is why it reacts to slow code as well as to queueing.
        return self.queue_p95_ms + self.service_p95_ms


@dataclass(frozen=True)
class Result:
    trace: str
    policy: str
    peak_rpm: float
    hours: float  # simulated time
    dyno_hours: float
    slo_violation_minutes: int
    scale_actions: int
    api_calls: int
    max_dynos: int

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["dyno_hours"] = round(self.dyno_hours, 2)
        data["hours"] = round(self.hours, 2)
        return data


def trace_from_rows(name: str, rows: Iterable[Mapping[str, str]]) -> Trace:
    """A trace from CSV rows with `timestamp` and `value` (what `load_trace` reads)."""
    stamps: list[datetime] = []
    counts: list[float] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        stamps.append(datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC))
        count = float(row["value"])
        # `max(0.0, nan)` is 0.0: a nan had been read as a quiet minute.
        if not (math.isfinite(count) and count >= 0):
            raise ValueError(f"{name}, line {line}: {row['value'][:20]!r} is not a request count")
        counts.append(count)
    if len(stamps) < 2:
        raise ValueError(f"{name}: a trace needs at least two rows")
    # The median spacing: a few traces skip a row here and there.
    gaps = sorted((b - a).total_seconds() for a, b in itertools.pairwise(stamps))
    interval = int(gaps[len(gaps) // 2])
    if interval <= 0:
        raise ValueError(f"{name}: timestamps must increase")
    # Start on a whole minute, so that ticks and SLO minutes fall on the clock's.
    start = stamps[0] - timedelta(seconds=interval)
    start -= timedelta(seconds=start.second, microseconds=start.microsecond)
    return Trace(name, start, interval, tuple(counts))


def wait_tail(model: Model, rate_rps: float, dynos: float) -> tuple[float, float]:
    """(P(wait > 0), decay rate per second) of one dyno's M/M/c queue when `dynos` dynos
    share `rate_rps`: P(wait > x) = p * exp(-decay * x)."""
    if dynos <= 0:
        return 1.0, 0.0
    c, mu = model.concurrency, 1 / model.service_s
    per_dyno = min(rate_rps / dynos, model.rho_cap * c * mu)
    load = per_dyno / mu
    # Erlang C, summed in the stable order.
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= load / k
        total += term
    top = term * load / c * c / (c - load)
    return top / (total + top), c * mu - per_dyno


def p95_one(delay: float, p: float, decay: float) -> float:
    """p95 wait, seconds, of one step: a fixed backlog `delay` plus the M/M/c tail."""
    if p <= _TAIL:
        return delay
    if decay <= 0:
        return math.inf
    return delay + math.log(p / _TAIL) / decay


def p95_mix(parts: Sequence[tuple[float, float, float, float]]) -> float:
    """p95 wait of several steps pooled: parts are (requests, delay, p, decay)."""
    total = sum(part[0] for part in parts)
    if total <= 0:
        return 0.0
    lo, hi = 0.0, max(p95_one(d, p, k) for _, d, p, k in parts)
    if math.isinf(hi):
        return hi
    for _ in range(40):
        mid = (lo + hi) / 2
        tail = 0.0
        for weight, delay, p, decay in parts:
            tail += weight * (1.0 if mid < delay else p * math.exp(-decay * (mid - delay)))
        if tail > _TAIL * total:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-5:
            break
    return hi


@functools.lru_cache(maxsize=16)
def rpm_per_dyno_at_slo(model: Model) -> float:
    """The most requests per minute one dyno takes with its p95 queue time within the SLO."""
    lo, hi = 0.0, model.capacity_rps * model.rho_cap
    for _ in range(60):
        mid = (lo + hi) / 2
        if 1000 * p95_one(0.0, *wait_tail(model, mid, 1)) <= model.slo_ms:
            lo = mid
        else:
            hi = mid
    return lo * 60


def dynos_for(model: Model, rate_rps: float) -> int:
    """Fewest dynos whose p95 queue time at `rate_rps` is within the SLO."""
    if rate_rps <= 0:
        return 0
    guess = max(1, math.ceil(rate_rps * 60 / rpm_per_dyno_at_slo(model) - _EPSILON))
    # The guess is right but for rounding in the bisection: one more is the most it takes.
    for n in range(guess, guess + 3):
        if 1000 * p95_one(0.0, *wait_tail(model, rate_rps, n)) <= model.slo_ms:
            return n
    raise ArithmeticError(f"no dyno count keeps {rate_rps:.1f} req/s within the SLO")


# One step of the model, shared by `run` and the fake Heroku's router
# (`bot.sandbox.fakes.router`), so the closed loop and the simulator agree by construction:
# a part is (requests per second, backlog delay s, P(wait > 0), decay per second).
Part = tuple[float, float, float, float]


def serving_dynos(model: Model, ready_at: Iterable[float], t: float) -> float:
    """How many dynos serve the step [t, t + tick): `ready_at` are the running dynos' ready
    times (seconds on the same clock as `t`); one that becomes ready within the step
    serves that fraction of it."""
    tick = model.tick_s
    return sum(min(1.0, max(0.0, (t + tick - r) / tick)) for r in ready_at)


def serve_step(model: Model, rate_rps: float, serving: float, backlog: float) -> tuple[Part, float]:
    """One step at `rate_rps` on `serving` dynos with `backlog` requests waiting from before:
    its wait distribution and the backlog after it. Traffic beyond capacity piles up as a
    fluid backlog, capped at what the router lets wait `timeout_s` (H12 drops the rest)."""
    full = serving * model.capacity_rps
    if backlog == 0.0 and rate_rps <= full:
        return (rate_rps, 0.0, *wait_tail(model, rate_rps, serving)), 0.0
    tick, timeout = model.tick_s, model.timeout_s
    if full > 0:
        after = min(max(0.0, backlog + (rate_rps - full) * tick), timeout * full)
        delay = min((backlog + after) / 2 / full, timeout)
    else:
        after, delay = backlog + rate_rps * tick, timeout
    return (rate_rps, delay, *wait_tail(model, rate_rps, serving)), after


def capped_ms(model: Model, p95_s: float) -> float:
    """A p95 wait in milliseconds as the router lets it be: no longer than `timeout_s`."""
    return 1000 * min(p95_s, model.timeout_s)


def minute_queue_p95_ms(model: Model, parts: Sequence[Part]) -> float:
    """The p95 queue time of a clock minute from its steps' parts."""
    return capped_ms(model, p95_mix(parts))


def violates(model: Model, queue_p95_ms: float) -> bool:
    """Whether a clock minute with this p95 queue time counts as an SLO-violation minute."""
    return queue_p95_ms > model.slo_ms


def draw_request(model: Model, part: Part, rng: random.Random) -> tuple[float, float]:
    """(queue wait, service time) in seconds of one request of a step with wait
    distribution `part`: the backlog's delay, plus an exponential wait of rate `decay` with
    probability P(wait > 0); service exponential of mean `service_s`. A wait over
    `timeout_s` is what Heroku's router logs as an H12."""
    _, delay, p, decay = part
    wait = delay
    if rng.random() < p:
        wait += rng.expovariate(decay) if decay > 0 else model.timeout_s
    return wait, rng.expovariate(1 / model.service_s)


def boot_delays(model: Model) -> Iterator[float]:
    """Each started dyno's boot delay, in the order dynos start: uniform in
    [boot_min_s, boot_max_s], seeded by the model's seed."""
    rng = random.Random(model.seed)
    while True:
        yield rng.uniform(model.boot_min_s, model.boot_max_s)


def fresh_rpm(model: Model, counted: Sequence[float]) -> list[float]:
    """By step: the freshest request rate the tick reads, per minute: the requests logged
    in the `fresh_span_s` that end with step k - `drain_lag_steps`, older steps counted in
    whole or in part (a share of a step's requests for a share of its time)."""
    tick, span = model.tick_s, model.fresh_span_s
    rates = []
    for k in range(len(counted)):
        last = max(0, k - model.drain_lag_steps)
        total, left, j = 0.0, span, last
        while left > 0 and j >= 0:
            share = min(1.0, left / tick)
            total += counted[j] * share
            left -= tick * share
            j -= 1
        covered = span - left
        rates.append(total * 60 / covered if covered > 0 else 0.0)
    return rates


def default_peak_rpm(model: Model) -> float:
    """A peak that needs 10 dynos: ten times what one dyno carries, in whole hundreds."""
    return math.floor(10 * rpm_per_dyno_at_slo(model) / 100) * 100


def make_context(trace: Trace, model: Model, peak_rpm: float | None = None) -> Context:
    peak = default_peak_rpm(model) if peak_rpm is None else peak_rpm
    top = max(trace.counts)
    per_step = trace.interval_s // model.tick_s
    if per_step * model.tick_s != trace.interval_s:
        raise ValueError(f"{trace.name}: interval {trace.interval_s} s is not whole ticks")
    # Scale so the busiest interval runs at `peak` requests per minute throughout.
    # Relative to the top first: a tiny top (a subnormal float) would overflow the scale.
    rates = tuple(
        (count / top if top > 0 else 0.0) * peak / 60
        for count in trace.counts
        for _ in range(per_step)
    )
    # What the router logs count: Poisson arrivals around the rate (by the normal
    # approximation), drawn once per trace so every policy sees the same noise.
    noise = random.Random(f"arrivals/{model.seed}")
    counted = tuple(
        max(0.0, float(round(noise.gauss(mean, math.sqrt(mean))))) if mean > 0 else 0.0
        for mean in (rate * model.tick_s for rate in rates)
    )
    steps_per_minute = 60 // model.tick_s
    minute = [sum(counted[max(0, k - steps_per_minute + 1) : k + 1]) for k in range(len(rates))]
    return Context(
        model,
        trace,
        peak,
        rates,
        rpm_per_dyno_at_slo(model),
        counted=counted,
        minute_rpm=tuple(minute),
    )


class Policy:
    """A policy as the simulator drives it: the count to start with, then one call a tick.

    `reads_every_s`: how often it reads the formation from the Heroku API (None: never);
    every change it makes is one formation write."""

    name = "policy"
    reads_every_s: float | None = None

    def start(self, context: Context) -> int:
        return context.required(max(context.rates[: context.model.boot_steps + 1]))

    def tick(self, obs: Observation) -> int:
        raise NotImplementedError


def run(context: Context, policy: Policy) -> Result:
    """Replay the whole trace under `policy`."""
    model = context.model
    boots = boot_delays(model)
    tick = float(model.tick_s)
    capacity = model.capacity_rps
    per_minute = 60 // model.tick_s
    rates = context.rates

    count = min(max(policy.start(context), model.min_dynos), model.max_dynos)
    ready_at = [-math.inf] * count  # per running dyno, oldest first
    last_ready = -math.inf
    backlog = 0.0
    # Each step's wait distribution as (requests, backlog delay, P(wait > 0), decay); the
    # same tuple object for the same steady step, so a steady minute is one identity check.
    steady: dict[tuple[float, float], tuple[float, float, float, float]] = {}
    p95_of: dict[tuple[float, float, float, float], float] = {}
    window: list[tuple[float, float, float, float]] = []
    dyno_steps = 0.0
    violations = actions = 0
    most = count
    obs = Observation(context.start, service_p95_ms=model.service_p95_ms)
    minute_rpm, counted = context.minute_rpm, context.counted
    fresh = fresh_rpm(model, counted)

    for k, rate in enumerate(rates):
        t = k * tick
        n = len(ready_at)
        dyno_steps += n
        serving = float(n) if last_ready <= t else serving_dynos(model, ready_at, t)
        if backlog == 0.0 and rate <= serving * capacity:
            # A steady step: the same (rate, serving) always gives the same part.
            part = steady.get((rate, serving))
            if part is None:
                part = steady[(rate, serving)] = serve_step(model, rate, serving, 0.0)[0]
        else:
            part, backlog = serve_step(model, rate, serving, backlog)
        if k < per_minute:
            window.append(part)
        else:
            window[k % per_minute] = part

        if all(other is part for other in window):
            p95 = p95_of.get(part)
            if p95 is None:
                p95 = p95_of[part] = p95_one(*part[1:])
        else:
            p95 = p95_mix(window)
        queue_ms = capped_ms(model, p95)
        if (k + 1) % per_minute == 0 and violates(model, queue_ms):
            violations += 1

        now_s = t + tick
        ready = sum(1 for r in ready_at if r <= now_s) if last_ready > now_s else n
        obs.step, obs.seconds = k, now_s
        obs.current, obs.ready, obs.booting = n, ready, n - ready
        obs.rpm, obs.queue_p95_ms = minute_rpm[k], queue_ms
        obs.rpm_now = fresh[k]

        desired = policy.tick(obs)
        if desired == n:
            continue
        desired = min(max(desired, 0), model.max_dynos)
        if desired > n:
            for _ in range(desired - n):
                r = now_s + next(boots)
                ready_at.append(r)
                last_ready = max(last_ready, r)
            most = max(most, desired)
            actions += 1
        elif desired < n:
            del ready_at[desired:]
            last_ready = max(ready_at, default=-math.inf)
            actions += 1

    hours = len(rates) * tick / 3600
    reads = 0 if policy.reads_every_s is None else int(hours * 3600 // policy.reads_every_s)
    return Result(
        trace=context.trace.name,
        policy=policy.name,
        peak_rpm=context.peak_rpm,
        hours=hours,
        dyno_hours=dyno_steps * tick / 3600,
        slo_violation_minutes=violations,
        scale_actions=actions,
        api_calls=reads + actions,
        max_dynos=most,
    )
