"""Autoscaling policies on real and synthetic traffic: dyno-hours against SLO-violation minutes.

Runs every policy of `policies.simulator_baselines` on every trace in ../shared/traces (Numenta
Anomaly Benchmark series, see its README) and on synthetic shapes it was never tuned to
(`policies.shapes`: flash crowd, launch step, double daily peaks, ramps with bursts, a noisy
plateau, a batch sawtooth; each drawn from each of --shape-seeds), through the model of
Heroku web dynos in `policies.simulator`, each trace scaled so its peak needs 10 dynos
(--peak-rpm), and prints one table: per trace and policy, the dyno-hours (and their ratio
to the offline optimum's), the minutes whose p95 queue time broke the 300 ms SLO, the
formation writes, and the Heroku API calls (reads and writes; per hour too, against 4,500
per account).

The goal (issue 17), checked per trace for `ours`, the policy an app gets with no tuning:
its dyno-hours are at most 1.10 x the offline optimum's, and its violation minutes no more
than the fewest of the hirefire, judoscale, heroku and hpa baselines' in the same run
(static is shown too). Missing the goal is reported, not an error.

    .venv/bin/python -m benchmarks.autoscale [--traces DIR] [--shape-seeds 1 2] [--no-traces]
        [--policy NAME ...] [--peak-rpm N] [--seed N] [--jobs N] [--output FILE] [--json]

--output writes the table into FILE between `<!-- bench-autoscale -->` and
`<!-- /bench-autoscale -->` (a new file gets both); a file without them is left alone.

    .venv/bin/python -m benchmarks.autoscale --detail SOURCE [--policy ours judoscale]

--detail prints one trace minute by minute instead (SOURCE a CSV path or a shape such as
`shape:noisy-plateau#1`): the minute's requests, the dynos the SLO needs for its busiest
step, and per policy the formation and ready dynos at the minute's end, its p95 queue time
and `!` when that broke the SLO; ours' reason last. Reading why a policy loses minutes on
a trace starts here.
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
from policies.shapes import SHAPES, generate
from policies.simulator import Context, Model, Observation, Policy, Result, Trace, make_context, run
from policies.simulator_baselines import POLICIES, Autoscaler

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = ROOT.parent / "shared" / "traces"
BASELINES = ("hirefire", "judoscale", "heroku", "hpa", "static")
PEERS = ("hirefire", "judoscale", "heroku", "hpa")  # the reactive products ours must match
OURS, OPTIMUM = "ours", "optimum"
WITHIN = 1.10  # of the optimum's dyno-hours
SHAPE = "shape:"  # a source naming a synthetic shape, "shape:flash-crowd#1"
HEROKU_BUDGET = 4500  # API requests per hour per account
BEGIN, END = "<!-- bench-autoscale -->", "<!-- /bench-autoscale -->"


def _trace(source: str) -> Trace:
    if source.startswith(SHAPE):
        name, _, seed = source.removeprefix(SHAPE).partition("#")
        return generate(name, int(seed))
    return load_trace(source)


@functools.lru_cache(maxsize=2)
def context_of(source: str, peak_rpm: float | None, seed: int):  # type: ignore[no-untyped-def]
    return make_context(_trace(source), Model(seed=seed), peak_rpm)


def _job(task: tuple[str, str, float | None, int]) -> tuple[Result, float]:
    path, policy, peak_rpm, seed = task
    context = context_of(path, peak_rpm, seed)
    started = time.perf_counter()
    return run(context, POLICIES[policy](context)), time.perf_counter() - started


def shape_sources(seeds: Sequence[int]) -> list[str]:
    return [f"{SHAPE}{name}#{seed}" for name in SHAPES for seed in seeds]


def run_all(
    sources: Sequence[str | Path],
    peak_rpm: float | None,
    seed: int,
    jobs: int,
    policies: Sequence[str] = tuple(POLICIES),
) -> list[Result]:
    tasks = [(str(t), p, peak_rpm, seed) for t in sources for p in policies]
    # Longest first, so that the last one does not run alone: the size of the trace, and
    # ours' forecast and the HPA's calculator cost more per tick than the others.
    weight = {"ours": 4, "hpa": 3}

    def cost(task: tuple[str, str, float | None, int]) -> float:
        # A generated shape is 3 days of minutes: about a 5-minute trace's 50 kB file.
        size = 50_000 if task[0].startswith(SHAPE) else os.path.getsize(task[0])
        return size * weight.get(task[1], 1)

    order = sorted(tasks, key=cost, reverse=True)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        done = dict(zip(order, pool.map(_job, order), strict=True))
    return [done[task][0] for task in tasks]


def goal(results: Sequence[Result]) -> list[dict[str, object]]:
    """Per trace: whether ours meets both bounds, and by how much."""
    verdicts = []
    for trace in dict.fromkeys(r.trace for r in results):
        rows = {r.policy: r for r in results if r.trace == trace}
        if OURS not in rows or OPTIMUM not in rows:
            continue
        ours, optimum = rows[OURS], rows[OPTIMUM]
        ratio = ours.dyno_hours / optimum.dyno_hours if optimum.dyno_hours else float("inf")
        peers = {name: rows[name].slo_violation_minutes for name in PEERS if name in rows}
        best = min(peers.values(), default=None)
        fewest = [name for name, minutes in peers.items() if minutes == best]
        hours_ok = ratio <= WITHIN
        minutes_ok = best is None or ours.slo_violation_minutes <= best
        verdicts.append(
            {
                "trace": trace,
                "met": hours_ok and minutes_ok,
                "vs_optimum": round(ratio, 3),
                "hours_ok": hours_ok,
                "violation_minutes": ours.slo_violation_minutes,
                "best_peer_minutes": best,
                "best_peers": fewest,
                "minutes_ok": minutes_ok,
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
        state = "met" if v["met"] else "**not met**"
        hours = "ok" if v["hours_ok"] else "over"
        minutes = "ok" if v["minutes_ok"] else "over"
        peers = ", ".join(v["best_peers"])  # type: ignore[arg-type]
        lines.append(
            f"- {v['trace']}: goal {state}: dyno-hours {v['vs_optimum']:.2f} x the optimum's "
            f"(at most {WITHIN}: {hours}); violation minutes {v['violation_minutes']} against "
            f"the best peer's {v['best_peer_minutes']} ({peers}: {minutes})."
        )
    return lines


class Recorder(Policy):
    """A policy as it is, noting at each minute's end what it ran and the queue it saw."""

    def __init__(self, inner: Policy, context: Context) -> None:
        self.inner, self.name, self.reads_every_s = inner, inner.name, inner.reads_every_s
        self.per_minute: list[tuple[int, int, float, str]] = []  # count, ready, p95 ms, why
        self._per_minute = 60 // context.model.tick_s

    def start(self, context: Context) -> int:
        return self.inner.start(context)

    def tick(self, obs: Observation) -> int:
        desired = self.inner.tick(obs)
        if (obs.step + 1) % self._per_minute == 0:
            last = getattr(self.inner, "last", None)
            why = last.reason if isinstance(self.inner, Autoscaler) and last else ""
            self.per_minute.append((obs.current, obs.ready, obs.queue_p95_ms, why))
        return desired


def detail(source: str, policies: Sequence[str], peak_rpm: float | None, seed: int) -> str:
    """One trace minute by minute under `policies` (the --detail table)."""
    context = context_of(source, peak_rpm, seed)
    model = context.model
    per_minute = 60 // model.tick_s
    recorders = [Recorder(POLICIES[name](context), context) for name in policies]
    totals = {r.name: run(context, r).slo_violation_minutes for r in recorders}
    head = ["minute", "rpm", "need"] + [f"{r.name} n/ready ms" for r in recorders]
    lines = [
        "  ".join(head) + "  why (ours)",
        "violation minutes: " + ", ".join(f"{k} {v}" for k, v in totals.items()),
    ]
    for i in range(len(context.rates) // per_minute):
        steps = context.rates[i * per_minute : (i + 1) * per_minute]
        need = context.required(max(steps))
        cells = [f"{i:5d}", f"{context.minute_rpm[(i + 1) * per_minute - 1]:7,.0f}", f"{need:3d}"]
        why = ""
        for r in recorders:
            n, ready, ms, reason = r.per_minute[i]
            mark = "!" if ms > model.slo_ms else " "
            cells.append(f"{n:3d}/{ready:<3d}{ms:7,.0f}{mark}")
            why = why or reason
        lines.append("  ".join(cells) + "  " + why)
    return "\n".join(lines)


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
    parser.add_argument(
        "--shape-seeds",
        type=int,
        nargs="*",
        default=[1, 2],
        help="seeds of the synthetic shapes (default 1 2); none: no shapes",
    )
    parser.add_argument("--no-traces", action="store_true", help="synthetic shapes only")
    parser.add_argument(
        "--policy",
        nargs="+",
        choices=list(POLICIES),
        help="a subset (the goal needs ours, optimum and the peers)",
    )
    parser.add_argument("--peak-rpm", type=float, default=None, help="default: 10 dynos' worth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, help="write the table into this file")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--detail", metavar="SOURCE", help="one trace, minute by minute")
    args = parser.parse_args(argv)
    if args.detail:
        chosen = args.policy or [OURS, "hpa", "judoscale", OPTIMUM]
        print(detail(args.detail, chosen, args.peak_rpm, args.seed))
        return 0

    traces: list[str | Path] = [] if args.no_traces else sorted(args.traces.glob("*.csv"))
    if not traces and not args.no_traces:
        parser.error(f"no *.csv in {args.traces}")
    sources = [*traces, *shape_sources(args.shape_seeds)]
    if not sources:
        parser.error("nothing to run: no traces and no shape seeds")
    started = time.perf_counter()
    policies = args.policy or list(POLICIES)
    results = run_all(sources, args.peak_rpm, args.seed, max(1, args.jobs), policies)
    verdicts = goal(results)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"results": [r.as_json() for r in results], "goal": verdicts}, indent=2))
        return 0

    model = Model(seed=args.seed)
    context = context_of(str(sources[0]), args.peak_rpm, args.seed)
    command = "make bench-autoscale" + (f" ARGS='{' '.join(argv)}'" if argv else "")
    header = (
        f"Model: a dyno serves {model.concurrency} requests at once, {model.service_s * 1000:.0f} ms "
        f"each on average ({model.capacity_rps * 60:,.0f} rpm flat out, "
        f"{context.rpm_per_dyno_at_slo:,.0f} rpm within the SLO of p95 queue time <= "
        f"{model.slo_ms:.0f} ms), boots in {model.boot_min_s:.0f}-{model.boot_max_s:.0f} s, "
        f"seed {args.seed}. Each trace's peak is scaled to {context.peak_rpm:,.0f} rpm "
        f"(10 dynos). Shapes `name#seed` are synthetic (`policies/shapes.py`), 3 days of "
        f"minutes each. Goal: ours <= {WITHIN} x the optimum's dyno-hours and no more "
        f"violation minutes than the best of {', '.join(PEERS)}. Produced by `{command}`."
    )
    text = "\n".join([header, "", table(results), "", *verdict_lines(verdicts)])
    print(text)
    missed = [str(v["trace"]) for v in verdicts if not v["met"]]
    summary = "met on every trace" if not missed else f"NOT met on {', '.join(missed)}"
    print(f"\nGoal {summary} ({len(verdicts) - len(missed)} of {len(verdicts)}); {elapsed:.0f} s.")
    if args.output:
        write_block(args.output, text)
        print(f"Wrote the table into {args.output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
