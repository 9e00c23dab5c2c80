"""`deploybot simulate`: read a traffic trace file and replay it through the simulator's
model (`policies.simulator`) under one policy or all of them, printing the results.

    python -m bot simulate --trace FILE.csv [--policy NAME|all] [--peak-rpm N] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from policies.simulator import (
    Model,
    Result,
    Trace,
    default_peak_rpm,
    make_context,
    run,
    trace_from_rows,
)
from policies.simulator_baselines import POLICIES, make_policy


def load_trace(path: str | Path) -> Trace:
    path = Path(path)
    with path.open(newline="") as handle:
        return trace_from_rows(path.name, csv.DictReader(handle))


def simulate(
    trace_path: str | Path,
    policy: str = "ours",
    *,
    peak_rpm: float | None = None,
    model: Model | None = None,
) -> Result:
    context = make_context(load_trace(trace_path), model or Model(), peak_rpm)
    return run(context, make_policy(policy, context))


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="deploybot simulate",
        description="Replay a traffic trace through a model of Heroku web dynos.",
    )
    parser.add_argument("--trace", required=True, help="CSV with timestamp,value rows")
    parser.add_argument(
        "--policy", default="ours", choices=[*POLICIES, "all"], help="default: ours"
    )
    parser.add_argument(
        "--peak-rpm",
        type=float,
        default=None,
        help=f"requests per minute at the trace's peak (default {default_peak_rpm(Model()):,.0f}: 10 dynos)",
    )
    parser.add_argument("--seed", type=int, default=0, help="boot delays (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.peak_rpm is not None and args.peak_rpm <= 0:
        parser.error("--peak-rpm must be positive")
    try:
        trace = load_trace(args.trace)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"cannot read the trace: {exc}")
    context = make_context(trace, Model(seed=args.seed), args.peak_rpm)
    names = list(POLICIES) if args.policy == "all" else [args.policy]
    results = [run(context, POLICIES[name](context)) for name in names]
    if args.json:
        payload = [r.as_json() for r in results]
        out(json.dumps(payload[0] if args.policy != "all" else payload, indent=2))
    else:
        out(
            f"{trace.name}: {len(trace.counts)} intervals of {trace.interval_s} s, "
            f"peak scaled to {context.peak_rpm:,.0f} rpm "
            f"({context.rpm_per_dyno_at_slo:,.0f} rpm per dyno within the SLO)"
        )
        for r in results:
            out(
                f"{r.policy:>10}: {r.dyno_hours:10,.1f} dyno-hours  "
                f"{r.slo_violation_minutes:6d} SLO-violation minutes  "
                f"{r.scale_actions:6d} scale actions  {r.api_calls:7d} API calls"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
