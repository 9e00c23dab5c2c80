"""Synthetic traffic shapes for the autoscaling benchmark, each drawn from a seed.

The four shared traces are what the default was first judged on; these are traffic it was
never tuned to (issue 17): a flash crowd, a launch step, double daily peaks, ramps with
bursts, a noisy plateau and a sawtooth of batch jobs. Each is a `policies.simulator.Trace`
of one-minute intervals over a few days (so the seasonal forecast has yesterday to read),
with Poisson-like noise, and the same seed always gives the same trace. Pure: no I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from policies.simulator import Trace

_START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
_DAY = 24 * 60  # minutes


def _diurnal(minute: int, peak_hour: float, width_h: float) -> float:
    """A smooth daily bump centred on `peak_hour`, 0..1."""
    hour = (minute % _DAY) / 60
    distance = min(abs(hour - peak_hour), 24 - abs(hour - peak_hour))
    return math.exp(-((distance / width_h) ** 2))


# A minute's count wobbles more than Poisson arrivals at this scale would (users come in
# sessions, clients retry): by 5 % of the level, what the simulator then adds its own
# Poisson noise to.
WOBBLE = 0.05

# A shape yields, minute by minute, the level traffic follows and the relative standard
# deviation of the minute's wobble around it; `generate` draws the wobble from the same
# generator right after each yield, so a shape that draws inside its loop sees the
# sequence it always saw.
Levels = Iterator[tuple[float, float]]


def flash_crowd(rng: random.Random, days: int) -> Levels:
    """A quiet diurnal app hit by a few sudden crowds (a link on a news site): x4-8 within
    a minute or two, decaying over 20-90 minutes."""
    base = 100.0
    crowds = [
        (rng.randrange(_DAY // 2, days * _DAY - 120), rng.uniform(4, 8), rng.uniform(20, 90))
        for _ in range(2 * days)
    ]
    for m in range(days * _DAY):
        level = base * (0.4 + 0.6 * _diurnal(m, 14, 5))
        for at, height, decay in crowds:
            if m >= at:
                level += base * height * math.exp(-(m - at) / decay) * min(1.0, (m - at + 1) / 2)
        yield level, WOBBLE


def launch_step(rng: random.Random, days: int) -> Levels:
    """A launch: low traffic, then a step up by x3-5 at a random moment that stays, with a
    second smaller step a day later."""
    first = rng.randrange(_DAY // 2, _DAY + _DAY // 2)
    second = first + _DAY + rng.randrange(-120, 120)
    high, more = rng.uniform(3, 5), rng.uniform(1.2, 1.6)
    for m in range(days * _DAY):
        level = 100.0 * (0.7 + 0.3 * _diurnal(m, 15, 6))
        if m >= first:
            level *= high
        if m >= second:
            level *= more
        yield level, WOBBLE


def double_peaks(rng: random.Random, days: int) -> Levels:
    """Two daily peaks (morning and evening), the evening one taller, each a little
    different from day to day."""
    morning, evening = rng.uniform(8, 10), rng.uniform(19, 21)
    for m in range(days * _DAY):
        day = m // _DAY
        wobble = 1 + 0.1 * math.sin(day * 1.7 + morning)
        level = 30 + 100 * wobble * (
            0.6 * _diurnal(m, morning, 1.5) + 1.0 * _diurnal(m, evening, 2)
        )
        yield level, WOBBLE


def ramp_bursts(rng: random.Random, days: int) -> Levels:
    """Traffic ramping up and down over hours, with short bursts (x2-3 for 2-10 minutes)
    sprinkled on top at random."""
    bursts = {}
    for _ in range(12 * days):
        at = rng.randrange(days * _DAY)
        length, height = rng.randrange(2, 11), rng.uniform(2, 3)
        for m in range(at, at + length):
            bursts[m] = height
    period = rng.uniform(4, 8) * 60
    for m in range(days * _DAY):
        ramp = 0.5 + 0.5 * abs(((m / period) % 2) - 1)  # a triangle wave 0.5..1
        level = 120 * ramp * bursts.get(m, 1.0)
        yield level, WOBBLE


def noisy_plateau(rng: random.Random, days: int) -> Levels:
    """Flat traffic with twice the usual minute-to-minute noise (10 %) and slow drifts but
    no daily rhythm: what a stabilization window exists for."""
    level = rng.uniform(300, 500)
    for m in range(days * _DAY):
        drift = 1 + 0.3 * math.sin(m / rng.uniform(200, 400)) if m % 97 == 0 else None
        level = level if drift is None else 400 * drift
        yield level, 2 * WOBBLE


def batch_sawtooth(rng: random.Random, days: int) -> Levels:
    """A job every hour or so that hammers the API for 10-20 minutes, then stops."""
    every, length = rng.randrange(45, 90), rng.randrange(10, 21)
    offset = rng.randrange(every)
    for m in range(days * _DAY):
        busy = (m + offset) % every < length
        yield (400.0 if busy else 60.0), WOBBLE


SHAPES: dict[str, Callable[[random.Random, int], Levels]] = {
    "flash-crowd": flash_crowd,
    "launch-step": launch_step,
    "double-peaks": double_peaks,
    "ramp-bursts": ramp_bursts,
    "noisy-plateau": noisy_plateau,
    "batch-sawtooth": batch_sawtooth,
}


def _draws(shape: str, seed: int, days: int) -> list[tuple[float, float, float]]:
    """(level, relative wobble, the minute's count) for each minute of `shape`."""
    try:
        make = SHAPES[shape]
    except KeyError:
        raise ValueError(f"unknown shape {shape!r}; try one of {', '.join(SHAPES)}") from None
    rng = random.Random(f"{shape}/{seed}")
    return [(level, sd, max(0.0, rng.gauss(level, sd * level))) for level, sd in make(rng, days)]


def generate(shape: str, seed: int, days: int = 3) -> Trace:
    """The trace of `shape` drawn from `seed`, one-minute intervals, named `shape#seed`."""
    counts = tuple(count for _, _, count in _draws(shape, seed, days))
    return Trace(f"{shape}#{seed}", _START, 60, counts)


def levels(shape: str, seed: int, days: int = 3) -> list[tuple[float, float]]:
    """What `generate` draws its trace around, minute by minute: the level and the relative
    standard deviation of the minute's wobble. What no real policy can know in advance,
    for `benchmarks.autoscale_bound`."""
    return [(level, sd) for level, sd, _ in _draws(shape, seed, days)]
