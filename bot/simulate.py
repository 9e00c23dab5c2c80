"""`deploybot simulate`: replay traffic through the simulator's model (`policies.simulator`)
and print the results: a trace file under one policy or all of them, or an app's own
stored traffic (the drain's minute rollups) under the default policy with settings to try
beside the app's current ones.

    python -m bot simulate --trace FILE.csv [--policy NAME|all] [--peak-rpm N] [--json]
        [--service-ms 200] [--concurrency 4] [--seed 0]
    python -m bot simulate --app APP [--since 7d] [--target rpm:1200] [--min N] [--max N]
        [--down-stabilization 2m] [--json]

An option of one form given to the other is refused, not ignored.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.actions.autoscaling import replayed_settings
from bot.config import Config
from bot.metrics.replay import replay_app
from bot.metrics.store import MetricsStore
from bot.registry import MAX_DOWN_STABILIZATION, Registry, RegistryError, UnknownApp
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.db import Database
from policies.autoscale import Target
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

MAX_TRACE_BYTES = 32 << 20  # the shared traces are at most a few hundred KiB
MAX_TRACE_SPAN = timedelta(days=120)  # the simulator steps every 10 s: about a million steps
DEFAULT_SINCE = timedelta(days=7)
# The coarsest rollups are kept 35 days (`bot.metrics.store.KEEP_COARSE`): older minutes are
# gone, and each day costs a query, so `--since 999999d` had run for hours.
MAX_SINCE = timedelta(days=35)
# The options each form reads (by argparse dest); the other form refuses them.
_APP_ONLY = ("since", "target", "min", "max", "down_stabilization")
_TRACE_ONLY = ("policy", "peak_rpm", "seed", "service_ms", "concurrency")


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


def _duration(text: str) -> timedelta:
    # At most six digits: `99999999999d` overflowed timedelta in a traceback.
    match = re.fullmatch(r"(\d{1,6})([smhd])", text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}: write 90s, 2m, 12h or 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def _said(span: timedelta) -> str:
    """A span as it is typed: `1d`, `36h`, `90m`."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _target(text: str) -> Target:
    match = re.fullmatch(r"(rpm|queue|p95|service):(\d+(?:\.\d+)?)(ms|s)?", text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: write rpm:1200, queue:300ms or service:500ms")
    value = float(match[2]) * (1000 if match[3] == "s" else 1)
    if value <= 0:
        # The policy divides by it: a zero had ended in a ZeroDivisionError traceback.
        raise argparse.ArgumentTypeError(f"{text!r}: a target must be more than 0")
    metric = {"rpm": "rpm_per_dyno", "queue": "queue_p95", "p95": "queue_p95"}
    return Target(metric.get(match[1], "service_p95"), value)  # type: ignore[arg-type]


def _main_app(args: argparse.Namespace, out: Callable[[str], object]) -> int:
    config = Config.from_env()
    db = Database(config.database_url)
    if db.needs_migration():
        db.dispose()
        out("the database is not migrated: run `python -m bot migrate` (the release phase) first.")
        return 1
    try:
        try:
            target = Registry.from_env().resolve(args.app)
        except (RegistryError, UnknownApp) as error:
            out(str(error))
            return 1
        # As `/deploy simulate APP 7d` reads them: a scale-down hold chat or the registry set
        # had been left out of "current settings" here.
        current = replayed_settings(AutoscaleStore(db), args.app, target)
        tried = dict(current)
        for key, value in (
            ("target", args.target),
            ("low", args.min),
            ("high", args.max),
            ("down_stabilization", args.down_stabilization),
        ):
            if value is not None:
                tried[key] = value
        found = replay_app(
            MetricsStore(db), args.app, args.since, datetime.now(UTC), tried, current
        )
    finally:
        db.dispose()
    if found is None:
        out(f"{args.app}: no stored traffic in the last {_said(args.since)}; is its log drain on?")
        return 1
    mine, theirs, context = found
    if args.json:
        payload = {
            "app": args.app,
            "minutes": len(context.trace.counts),
            "peak_rpm": round(context.peak_rpm, 1),
            "rpm_per_dyno_at_slo": round(context.rpm_per_dyno_at_slo, 1),
            "these_settings": mine.as_json(),
            "current_settings": theirs.as_json(),
        }
        out(json.dumps(payload, indent=2))
        return 0
    out(
        f"{context.trace.name}: {len(context.trace.counts):,} minutes, peak "
        f"{context.peak_rpm:,.0f} rpm; a modelled dyno carries "
        f"{context.rpm_per_dyno_at_slo:,.0f} rpm within the {context.model.slo_ms:.0f} ms SLO."
    )
    # The same settings twice would print two identical lines, read as two results.
    same = tried == current
    rows = [("these settings", mine)] if not same else []
    for label, r in [*rows, ("current settings", theirs)]:
        note = "  (no other settings given to try)" if same else ""
        out(
            f"{label:>16}: {r.dyno_hours:10,.1f} dyno-hours  "
            f"{r.slo_violation_minutes:6d} SLO-violation minutes  {r.scale_actions:6d} scale "
            f"actions{note}"
        )
    return 0


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="deploybot simulate",
        description="Replay a traffic trace, or an app's stored traffic, through a model of "
        "Heroku web dynos.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--trace", help="CSV with timestamp,value rows")
    source.add_argument("--app", help="replay this app's stored traffic (DATABASE_URL)")
    parser.add_argument("--since", type=_duration, help="with --app (default 7d)")
    parser.add_argument("--target", type=_target, help="with --app: rpm:1200, queue:300ms, …")
    parser.add_argument("--min", type=int, help="with --app")
    parser.add_argument("--max", type=int, help="with --app")
    parser.add_argument("--down-stabilization", type=_duration, help="with --app: 2m (at most 1h)")
    parser.add_argument("--policy", choices=[*POLICIES, "all"], help="with --trace (default ours)")
    parser.add_argument(
        "--peak-rpm",
        type=float,
        default=None,
        help=f"requests per minute at the trace's peak (default {default_peak_rpm(Model()):,.0f}: 10 dynos)",
    )
    parser.add_argument("--seed", type=int, help="boot delays (default 0)")
    parser.add_argument(
        "--service-ms",
        type=float,
        help=f"a request's mean service time (default {Model.service_s * 1000:.0f})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help=f"requests one dyno serves at once (default {Model.concurrency})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    # An option of the other form had been accepted and silently ignored.
    other = _TRACE_ONLY if args.app else _APP_ONLY
    given = [f"--{dest.replace('_', '-')}" for dest in other if getattr(args, dest) is not None]
    if given:
        parser.error(
            f"{', '.join(given)} only works with {'--trace' if args.app else '--app'}; "
            f"leave {'it' if len(given) == 1 else 'them'} out"
        )
    if args.min is not None and (args.min < 1 or (args.max is not None and args.min > args.max)):
        parser.error("--min must be at least 1 and at most --max")
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1: web dynos are never autoscaled to 0")
    if args.since is not None and not timedelta(minutes=1) <= args.since <= MAX_SINCE:
        parser.error(f"--since must be from 1m to {MAX_SINCE.days}d (the stored rollups' span)")
    if args.down_stabilization is not None and args.down_stabilization > MAX_DOWN_STABILIZATION:
        # As the registry and `autoscale set` refuse it: no app can have a longer hold.
        parser.error(
            f"--down-stabilization must be at most {_said(MAX_DOWN_STABILIZATION)}, the longest "
            "a scale-down may wait (as in the registry and `/deploy autoscale APP set`)"
        )
    if args.app:
        args.since = DEFAULT_SINCE if args.since is None else args.since
        return _main_app(args, out)
    args.policy = args.policy or "ours"
    args.seed = 0 if args.seed is None else args.seed
    args.service_ms = Model.service_s * 1000 if args.service_ms is None else args.service_ms
    args.concurrency = Model.concurrency if args.concurrency is None else args.concurrency
    # `not x > 0` and isfinite: nan compares false with everything, inf runs forever.
    if args.peak_rpm is not None and not (args.peak_rpm > 0 and math.isfinite(args.peak_rpm)):
        parser.error("--peak-rpm must be a positive number")
    if not (args.service_ms > 0 and math.isfinite(args.service_ms)) or args.concurrency < 1:
        parser.error("--service-ms and --concurrency must be positive numbers")
    try:
        if Path(args.trace).stat().st_size > MAX_TRACE_BYTES:
            parser.error(f"the trace is larger than {MAX_TRACE_BYTES >> 20} MiB")
        trace = load_trace(args.trace)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # TypeError: a row cut short
        parser.error(f"cannot read the trace: {exc}")
    if len(trace.counts) * trace.interval_s > MAX_TRACE_SPAN.total_seconds():
        parser.error(f"the trace spans more than {MAX_TRACE_SPAN.days} days of 10 s ticks")
    model = Model(seed=args.seed, service_s=args.service_ms / 1000, concurrency=args.concurrency)
    context = make_context(trace, model, args.peak_rpm)
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
