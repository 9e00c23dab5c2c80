"""Autoscaling policies on real traffic traces: dyno-hours against SLO-violation minutes.

Runs every policy of `policies.simulator_baselines` on every trace in ../shared/traces (Numenta
Anomaly Benchmark series, see its README) through the model of Heroku web dynos in
`policies.simulator`, each trace scaled so its peak needs 10 dynos (--peak-rpm), and prints one
table: per trace and policy, the dyno-hours (and their ratio to the offline optimum's),
the minutes whose p95 queue time broke the 300 ms SLO, the formation writes, and the
Heroku API calls (reads and writes; per hour too, against 4,500 per account).

The goal, checked per trace: ours uses no more dyno-hours than any baseline with no more
violation minutes than ours, and at most 1.15 x the optimum's. The baselines are
hirefire, judoscale, heroku, hpa and static; ours-5min (ours with the issue's 5 minute
stabilization) is shown beside them. Also printed, as a stricter reading: the baselines
that beat ours on either count. Missing the goal is reported, not an error.

    .venv/bin/python -m benchmarks.autoscale [--traces DIR] [--peak-rpm N] [--seed N]
        [--jobs N] [--output FILE] [--json]

--output writes the table into FILE between `<!-- bench-autoscale -->` and
`<!-- /bench-autoscale -->` (a new file gets both); a file without them is left alone.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bot.simulate import load_trace
from policies.simulator import Model, Result, make_context, run
from policies.simulator_baselines import POLICIES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = ROOT.parent / "shared" / "traces"
BASELINES = ("hirefire", "judoscale", "heroku", "hpa", "static")
OURS, OPTIMUM = "ours", "optimum"
WITHIN = 1.15  # of the optimum's dyno-hours
HEROKU_BUDGET = 4500  # API requests per hour per account
BEGIN, END = "<!-- bench-autoscale -->", "<!-- /bench-autoscale -->"


@functools.lru_cache(maxsize=2)
def _context(path: str, peak_rpm: float | None, seed: int):  # type: ignore[no-untyped-def]
    return make_context(load_trace(path), Model(seed=seed), peak_rpm)


def _job(task: tuple[str, str, float | None, int]) -> tuple[Result, float]:
    path, policy, peak_rpm, seed = task
    context = _context(path, peak_rpm, seed)
    started = time.perf_counter()
    return run(context, POLICIES[policy](context)), time.perf_counter() - started


def run_all(traces: Sequence[Path], peak_rpm: float | None, seed: int, jobs: int) -> list[Result]:
    tasks = [(str(t), p, peak_rpm, seed) for t in traces for p in POLICIES]
    # Longest first, so that the last one does not run alone: the size of the trace, and
    # ours' forecast and the HPA's calculator cost more per tick than the others.
    weight = {"ours": 4, "ours-5min": 4, "hpa": 3}

    def cost(task: tuple[str, str, float | None, int]) -> float:
        return os.path.getsize(task[0]) * weight.get(task[1], 1)

    order = sorted(tasks, key=cost, reverse=True)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        done = dict(zip(order, pool.map(_job, order), strict=True))
    return [done[task][0] for task in tasks]


def goal(results: Sequence[Result]) -> list[dict[str, object]]:
    """Per trace: whether the goal holds, and why."""
    verdicts = []
    for trace in dict.fromkeys(r.trace for r in results):
        rows = {r.policy: r for r in results if r.trace == trace}
        ours, optimum = rows[OURS], rows[OPTIMUM]
        ratio = ours.dyno_hours / optimum.dyno_hours if optimum.dyno_hours else float("inf")
        cheaper_as_good = [
            name
            for name in BASELINES
            if rows[name].slo_violation_minutes <= ours.slo_violation_minutes
            and rows[name].dyno_hours < ours.dyno_hours
        ]
        fewer_violations = [
            name
            for name in BASELINES
            if rows[name].slo_violation_minutes < ours.slo_violation_minutes
        ]
        fewer_hours = [name for name in BASELINES if rows[name].dyno_hours < ours.dyno_hours]
        verdicts.append(
            {
                "trace": trace,
                "met": not cheaper_as_good and ratio <= WITHIN,
                "vs_optimum": round(ratio, 3),
                "cheaper_with_no_more_violations": cheaper_as_good,
                "fewer_violation_minutes": fewer_violations,
                "fewer_dyno_hours": fewer_hours,
            }
        )
    return verdicts


def table(results: Sequence[Result]) -> str:
    optimum = {r.trace: r.dyno_hours for r in results if r.policy == OPTIMUM}
    lines = [
        "| trace (peak rpm) | policy | dyno-hours | × optimum | SLO-violation minutes "
        "| scale actions | API calls | API calls/h |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r.dyno_hours / optimum[r.trace] if optimum.get(r.trace) else float("nan")
        name = f"**{r.policy}**" if r.policy == OURS else r.policy
        lines.append(
            f"| {r.trace} ({r.peak_rpm:,.0f}) | {name} | {r.dyno_hours:,.1f} | {ratio:.2f} "
            f"| {r.slo_violation_minutes:,} | {r.scale_actions:,} | {r.api_calls:,} "
            f"| {r.api_calls / r.hours:.1f} |"
        )
    return "\n".join(lines)


def verdict_lines(verdicts: Sequence[dict[str, object]]) -> list[str]:
    lines = []
    for v in verdicts:
        beaten = v["cheaper_with_no_more_violations"]
        state = "met" if v["met"] else "**not met**"
        why = (
            f"{', '.join(beaten)} use fewer dyno-hours with no more violation minutes"  # type: ignore[arg-type]
            if beaten
            else "no baseline with no more violation minutes uses fewer dyno-hours"
        )
        stricter = []
        if v["fewer_violation_minutes"]:
            stricter.append(f"fewer violation minutes: {', '.join(v['fewer_violation_minutes'])}")  # type: ignore[arg-type]
        if v["fewer_dyno_hours"]:
            stricter.append(f"fewer dyno-hours: {', '.join(v['fewer_dyno_hours'])}")  # type: ignore[arg-type]
        lines.append(
            f"- {v['trace']}: goal {state}: {why}; ours is {v['vs_optimum']:.2f} x the "
            f"optimum's dyno-hours (at most {WITHIN}). Baselines ahead on one count: "
            f"{'; '.join(stricter) if stricter else 'none'}."
        )
    return lines


def write_block(path: Path, text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}"
    if not path.exists():
        path.write_text(block + "\n")
        return
    current = path.read_text()
    if BEGIN not in current or END not in current:
        raise SystemExit(f"{path} has no {BEGIN} … {END} markers; add them where the table goes.")
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + block + tail)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="CSV directory")
    parser.add_argument("--peak-rpm", type=float, default=None, help="default: 10 dynos' worth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, help="write the table into this file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    traces = sorted(args.traces.glob("*.csv"))
    if not traces:
        parser.error(f"no *.csv in {args.traces}")
    started = time.perf_counter()
    results = run_all(traces, args.peak_rpm, args.seed, max(1, args.jobs))
    verdicts = goal(results)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"results": [r.as_json() for r in results], "goal": verdicts}, indent=2))
        return 0

    model = Model(seed=args.seed)
    context = _context(str(traces[0]), args.peak_rpm, args.seed)
    command = "make bench-autoscale" + (f" ARGS='{' '.join(argv)}'" if argv else "")
    header = (
        f"Model: a dyno serves {model.concurrency} requests at once, {model.service_s * 1000:.0f} ms "
        f"each on average ({model.capacity_rps * 60:,.0f} rpm flat out, "
        f"{context.rpm_per_dyno_at_slo:,.0f} rpm within the SLO of p95 queue time <= "
        f"{model.slo_ms:.0f} ms), boots in {model.boot_min_s:.0f}-{model.boot_max_s:.0f} s, "
        f"seed {args.seed}. Each trace's peak is scaled to {context.peak_rpm:,.0f} rpm "
        f"(10 dynos). Produced by `{command}`."
    )
    text = "\n".join([header, "", table(results), "", *verdict_lines(verdicts)])
    print(text)
    met = all(v["met"] for v in verdicts)
    print(f"\nGoal {'met' if met else 'NOT met'} on every trace; {elapsed:.0f} s.")
    if args.output:
        write_block(args.output, text)
        print(f"Wrote the table into {args.output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
