"""How well any autoscaler could do on the synthetic shapes: a bound beside issue 17's goal.

The goal compares ours with the offline optimum, which knows each minute's traffic,
wobble included, a minute ahead. No policy that reads the past can know the wobble, so on
a noisy trace the goal may ask for more than can be had. This benchmark measures how much,
with a policy that knows more than any real one could and less than the optimum: the
level each minute's traffic is drawn around, and how far it wobbles (`policies.shapes.
levels`), for the whole trace in advance, but not the minute's own draw.

For each minute it runs the count d that minimises d + λ P(the minute's traffic needs
more than d dynos), the wobble being normal, planned ahead for the longest boot as the
optimum is (`plan_ahead`). A larger λ gives a count at least as large at every step, so
dyno-hours rise and violation minutes fall with λ; a bisection on λ finds the cheapest
run with no more violation minutes than the best peer's. If that run costs more than 1.10
x the optimum's dyno-hours, no policy meets both bounds of the goal on that trace, ours
included. Same model, traces, scaling and peers as `benchmarks.autoscale`.

The bisection picks λ per trace, which no policy running on unseen traffic can do.
`--lambdas 10 20 30` adds, per λ given, the same policy with that one λ on every shape, and
which shapes it meets both bounds on: a shape no single λ meets together with the others
is out of reach of any one setting of this trade-off, however well it knew the level.

    .venv/bin/python -m benchmarks.autoscale_bound [--shape-seeds 1 2] [--jobs N]
        [--lambdas 10 20 30]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from statistics import NormalDist

from benchmarks.autoscale import (
    OPTIMUM,
    OURS,
    PEERS,
    SHAPE,
    WITHIN,
    context_of,
    goal,
    run_all,
    shape_sources,
)
from policies.shapes import levels
from policies.simulator import Context, Result, rpm_per_dyno_at_slo, run
from policies.simulator_baselines import Planned, plan_ahead

_NORMAL = NormalDist()
_STEPS = 24  # bisections of log λ between 1e-3 and 1e9: about 2 % apart at the end


def level_rates(context: Context, source: str) -> list[tuple[float, float]]:
    """Per simulator step: the rate (requests/s) the step's traffic is drawn around, scaled
    as the trace was, and its relative standard deviation."""
    name, _, seed = source.removeprefix(SHAPE).partition("#")
    top = max(context.trace.counts)
    scale = context.peak_rpm / 60 / top if top > 0 else 0.0
    per_step = context.trace.interval_s // context.model.tick_s
    return [(level * scale, sd) for level, sd in levels(name, int(seed)) for _ in range(per_step)]


def knowing_plan(context: Context, steps: Sequence[tuple[float, float]], lam: float) -> list[int]:
    """The count per step that minimises d + λ P(the step needs more than d dynos)."""
    model = context.model
    per_dyno = rpm_per_dyno_at_slo(model) / 60  # requests/s one dyno takes within the SLO
    chosen: dict[tuple[float, float], int] = {}
    required = []
    for level, sd in steps:
        count = chosen.get((level, sd))
        if count is None:
            best, count = math.inf, model.max_dynos
            for d in range(model.min_dynos, model.max_dynos + 1):
                if level <= 0 or sd <= 0:
                    short = 0.0 if d * per_dyno >= level else 1.0
                else:
                    short = 1 - _NORMAL.cdf((d * per_dyno / level - 1) / sd)
                cost = d + lam * short
                if cost < best:
                    best, count = cost, d
            chosen[(level, sd)] = count
        required.append(count)
    return plan_ahead(required, model.boot_steps)


def cheapest_within(source: str, minutes: int, peak_rpm: float | None, seed: int) -> Result:
    """The cheapest run of the level-knowing policy with at most `minutes` violation
    minutes (or its best, if even λ = 1e9 has more)."""
    context = context_of(source, peak_rpm, seed)
    steps = level_rates(context, source)

    def attempt(log_lam: float) -> Result:
        return run(context, Planned("knows the level", knowing_plan(context, steps, 10**log_lam)))

    lo, hi = -3.0, 9.0
    best = attempt(hi)
    if best.slo_violation_minutes > minutes:
        return best
    for _ in range(_STEPS):
        mid = (lo + hi) / 2
        result = attempt(mid)
        if result.slo_violation_minutes <= minutes:
            hi, best = mid, result
        else:
            lo = mid
    return best


def _bound(task: tuple[str, int, float | None, int]) -> Result:
    return cheapest_within(*task)


def _one_lambda(task: tuple[str, float | None, int, float]) -> Result:
    source, peak_rpm, seed, lam = task
    context = context_of(source, peak_rpm, seed)
    plan = knowing_plan(context, level_rates(context, source), lam)
    return run(context, Planned("knows the level", plan))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--peak-rpm", type=float, default=None, help="default: 10 dynos' worth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--lambdas", type=float, nargs="*", default=[], help="also: one λ for every shape"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sources = shape_sources(args.shape_seeds)
    jobs = max(1, args.jobs)
    results = run_all(sources, args.peak_rpm, args.seed, jobs, [OURS, OPTIMUM, *PEERS])
    optimum = {r.trace: r.dyno_hours for r in results if r.policy == OPTIMUM}
    verdicts = goal(results)  # per trace, in the order of `sources`: ours and the best peer
    budgets = [int(v["best_peer_minutes"]) for v in verdicts]  # type: ignore[call-overload]
    tasks = [(s, b, args.peak_rpm, args.seed) for s, b in zip(sources, budgets, strict=True)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        bounds = list(pool.map(_bound, tasks))

    print(
        "| trace | best peer's violation minutes | knows the level: × optimum (minutes) "
        "| ours: × optimum (minutes) | both bounds reachable |"
    )
    print("|---|---:|---:|---:|:---|")
    for verdict, budget, bound in zip(verdicts, budgets, bounds, strict=True):
        trace = str(verdict["trace"])
        ratio = bound.dyno_hours / optimum[trace]
        within = bound.slo_violation_minutes <= budget
        reachable = "yes" if within and ratio <= WITHIN else "**no**"
        print(
            f"| {trace} | {budget:,} | {ratio:.3f} ({bound.slo_violation_minutes:,}) "
            f"| {verdict['vs_optimum']:.3f} ({verdict['violation_minutes']:,}) | {reachable} |"
        )
    if args.lambdas:
        print("\n| one λ for every shape | met | × optimum (minutes) per shape, * met |")
        print("|---:|---:|:---|")
    for lam in args.lambdas:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            runs = list(
                pool.map(_one_lambda, [(s, args.peak_rpm, args.seed, lam) for s in sources])
            )
        cells, met = [], 0
        for verdict, budget, result in zip(verdicts, budgets, runs, strict=True):
            trace = str(verdict["trace"])
            ratio = result.dyno_hours / optimum[trace]
            ok = ratio <= WITHIN and result.slo_violation_minutes <= budget
            met += ok
            name = trace.removeprefix(SHAPE)
            cells.append(f"{name} {ratio:.3f} ({result.slo_violation_minutes}){' *' if ok else ''}")
        print(f"| {lam:g} | {met} of {len(runs)} | {'; '.join(cells)} |")
    print(
        f"\nA trace is out of reach when a policy that knows every minute's level in advance "
        f"needs more than {WITHIN} x the optimum's dyno-hours to keep within the best peer's "
        f"violation minutes; {time.perf_counter() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
