"""The closed-loop proof: a traffic trace replayed on a compressed clock through the real web
and worker processes, against the fake Heroku's dyno capacity model, with the dyno-hours
and SLO-violation minutes measured at the fake set beside `deploybot simulate`'s on the
same trace and settings.

    .venv/bin/python -m benchmarks.closed_loop [--trace NAME|PATH|all] [--minutes 90]
        [--speed 30] [--peak-rpm N] [--service-ms 1000] [--seed 0]

What runs:
- PostgreSQL (TEST_DATABASE_URL, default the local server), a schema of the run's own,
  migrated by the Procfile's `release:` line and dropped afterwards;
- the fake Heroku (`bot.sandbox.fakes.heroku`) on the compressed clock, with the app
  `loop`, whose started dynos boot for the simulator's seeded delays, and the fake Slack;
- gunicorn from the Procfile's `web:` line, taking the log drain at `/drain/TOKEN`;
- the worker from the Procfile's `worker:` line, with autoscaling on for `loop` at the
  `ours` settings (rpm target from the model's load test, min 1, max 20, everything else
  the defaults); its autoscale tick reads the compressed clock (`DEPLOYBOT_BENCH_CLOCK`) and
  runs every 15 simulated seconds (`DEPLOYBOT_AUTOSCALE_SECONDS` = 15 / speed);
- the fake router (`bot.sandbox.fakes.router`), which serves the trace's traffic with the
  dynos the fake runs and posts router lines to the drain as Logplex does.

The trace is a window of `--minutes` around its busiest interval (its peak at two thirds
of the window), written to a CSV stamped on the compressed clock; `deploybot simulate
--trace THAT.csv --peak-rpm … --service-ms … --seed …` is then run on that very file. Fair
by construction: both sides use one model (`policies.simulator`'s step functions, not a
copy), the same scaled rates, the same logged request counts and the same boot delays;
what differs is only what the closed loop adds: the real drain, store, worker and Heroku
API calls, and their lags. The goal is agreement within 10 % on both figures (violation
minutes are compared with +1 in the denominator, as a handful of minutes is a small count).

The default model is a slow app (1 s mean service time, 4 at once: 99 rpm per dyno within
the 300 ms SLO, so a peak needing 10 dynos is 900 rpm), which keeps the drain at a few
hundred lines a second of wall time on a shared machine; `--service-ms 200` is
`make bench-autoscale`'s model at 7,900 rpm, about 4,000 lines a second at 30x.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks import procfile
from benchmarks.ack_latency import ADMIN, HEROKU_KEY, SIGNING_SECRET, Server
from benchmarks.autoscale import Recorder
from bot import simulate
from bot.metrics.store import MetricsStore
from bot.sandbox.fakes.dyno import FakeEndpoints, web_dyno_env
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.router import FakeRouter, SimClock
from bot.sandbox.fakes.slack import FakeSlack
from bot.store.autoscale_settings import AutoscaleStore, Settings
from bot.store.db import Database, normalize_url
from bot.store.drains import Drains
from policies.simulator import (
    Model,
    Trace,
    boot_delays,
    make_context,
    run,
)
from policies.simulator_baselines import make_policy, user_rpm_target

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT.parent / "shared" / "traces"
APP = "loop"
GOAL = 0.10
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Outcome:
    trace: str
    minutes: int
    peak_rpm: float
    loop_dyno_hours: float
    loop_violations: int
    sim_dyno_hours: float
    sim_violations: int
    scale_calls: int
    sim_scale_actions: int
    lines_sent: int
    lines_stored: int
    h12: int
    decisions: int
    wall_s: float
    # Per clock minute: requests, then web dynos and p95 queue ms in the loop and simulated.
    detail: tuple[tuple[float, int, float, int, float], ...] = ()

    @property
    def hours_diff(self) -> float:
        return abs(self.loop_dyno_hours - self.sim_dyno_hours) / max(self.sim_dyno_hours, 1e-9)

    @property
    def violations_diff(self) -> float:
        return abs(self.loop_violations - self.sim_violations) / (self.sim_violations + 1)

    @property
    def met(self) -> bool:
        return self.hours_diff <= GOAL and self.violations_diff <= GOAL


def trace_rows(path: Path) -> list[tuple[str, float]]:
    with path.open(newline="") as handle:
        return [(row["timestamp"], float(row["value"])) for row in csv.DictReader(handle)]


def window_csv(path: Path, minutes: int, start: datetime) -> str:
    """The `minutes` of `path` around its busiest interval, as CSV text stamped from
    `start` (a whole minute) on, with the trace's own interval."""
    trace = simulate.load_trace(path)
    rows = trace_rows(path)
    count = max(2, math.ceil(minutes * 60 / trace.interval_s))
    peak = max(range(len(rows)), key=lambda i: rows[i][1])
    first = min(max(0, peak - (2 * count) // 3), max(0, len(rows) - count))
    out = io.StringIO()
    out.write("timestamp,value\n")
    for i, (_, value) in enumerate(rows[first : first + count]):
        stamp = start + timedelta(seconds=(i + 1) * trace.interval_s)
        out.write(f"{stamp:%Y-%m-%d %H:%M:%S},{value!r}\n")
    return out.getvalue()


@contextlib.contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """A fresh schema on `base`, dropped afterwards; yields its URL."""
    schema = f"loop_{secrets.token_hex(5)}"
    admin = create_engine(normalize_url(base))
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def run_loop(
    trace_path: Path,
    *,
    minutes: int,
    speed: float,
    model: Model,
    peak_rpm: float | None,
    database_base: str,
    workdir: Path,
    say=print,  # type: ignore[no-untyped-def]
) -> Outcome:
    """One closed-loop run of `trace_path`, and the simulator on the same window."""
    began = time.monotonic()
    # The compressed clock starts at the next whole minute of the wall clock, so that what
    # the bot stores looks recent to every part of it that reads the wall clock.
    sim_start = datetime.fromtimestamp((int(time.time()) // 60 + 1) * 60, UTC)
    csv_path = workdir / f"{trace_path.stem}-{minutes}min.csv"
    csv_path.write_text(window_csv(trace_path, minutes, sim_start))
    trace: Trace = simulate.load_trace(csv_path)
    assert trace.start == sim_start, (trace.start, sim_start)
    context = make_context(trace, model, peak_rpm)
    policy = make_policy("ours", context)
    first = min(max(policy.start(context), model.min_dynos), model.max_dynos)
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"

    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(postgres_schema(database_base))
        subprocess.run(
            ["bash", "-c", procfile.line("release")],
            env={"PATH": path, "DATABASE_URL": database_url},
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        heroku = stack.enter_context(
            FakeHeroku(api_keys=(HEROKU_KEY,), boot_delays=boot_delays(model))
        )
        slack = stack.enter_context(FakeSlack())
        heroku.add_app(APP, {"web": (first, "standard-1x"), "worker": (0, "standard-1x")})
        database = Database(database_url)
        stack.callback(database.dispose)
        now = datetime.now(UTC)
        token = Drains(database).get_or_create(APP, "http://127.0.0.1", ADMIN, now).token
        target = user_rpm_target(context)
        AutoscaleStore(database).save(
            Settings(APP, "on", model.min_dynos, model.max_dynos, "rpm", target, ADMIN, now)
        )

        fakes = FakeEndpoints.of(heroku, slack)
        contract = web_dyno_env(
            database_url=database_url,
            fakes=fakes,
            heroku_key=HEROKU_KEY,
            signing_secret=SIGNING_SECRET,
            admin=ADMIN,
        )
        web_env = {
            **contract,
            "PATH": path,
            # The drain's windows reach the database as often, in simulated time, as in
            # production (every 5 s).
            "DEPLOYBOT_DRAIN_FLUSH_SECONDS": f"{5 / speed:.3f}",
        }
        web = Server("deploybot", procfile.line("web"), web_env, workdir / "web.log")
        stack.callback(web.stop)
        web.start()

        # A few wall seconds for the worker to start and take the lease before step 0.
        clock = SimClock(sim_start.timestamp(), time.time() + 4.0, speed)
        heroku.clock = clock.now
        worker_env = {
            **contract,
            "PATH": path,
            "DEPLOYBOT_BENCH_CLOCK": clock.env_value,
            "DEPLOYBOT_AUTOSCALE_SECONDS": f"{model.tick_s / speed:.4f}",
            "DEPLOYBOT_LEASE_RETRY_SECONDS": "0.5",
        }
        stack.enter_context(procfile.process("worker", worker_env, workdir / "worker.log"))

        router = FakeRouter(heroku, APP, context, sim_start, f"{web.base}/drain/{token}")
        stack.callback(router.close)
        stop = threading.Event()
        say(
            f"  {trace_path.name}: {minutes} simulated minutes at {speed:g}x "
            f"(~{minutes * 60 / speed:.0f} s), peak {context.peak_rpm:,.0f} rpm, "
            f"web={first} at the start, target {target:g} rpm per dyno"
        )
        try:
            router.serve(clock, stop)
        finally:
            stop.set()
        until = sim_start + timedelta(seconds=len(context.rates) * model.tick_s)
        loop_hours = router.dyno_hours(until)
        scale_calls = [r for r in heroku.requests if r.method == "PATCH" and "/formation" in r.path]
        web.stop()  # gunicorn's worker_exit flushes what it still holds
        end = int(until.timestamp()) + 60
        stored = sum(
            w.requests for w in MetricsStore(database).windows(APP, int(sim_start.timestamp()), end)
        )
        decisions = len(AutoscaleStore(database).decisions(APP, limit=100_000))
        if heroku.violations:
            raise SystemExit(
                f"the fake Heroku saw requests its schema forbids: {heroku.violations}"
            )

    argv = [
        "--trace",
        str(csv_path),
        "--json",
        "--peak-rpm",
        f"{context.peak_rpm!r}",
        "--seed",
        str(model.seed),
        "--service-ms",
        f"{model.service_s * 1000!r}",
        "--concurrency",
        str(model.concurrency),
    ]
    printed: list[str] = []
    simulate.main(argv, out=printed.append)
    sim = json.loads(printed[0])
    # The same run in process, with what it saw each minute: a check that the command line
    # built the same context, and the minute-by-minute detail (`--detail`).
    recorder = Recorder(make_policy("ours", context), context)
    direct = run(context, recorder)
    assert round(direct.dyno_hours, 2) == sim["dyno_hours"], (direct, sim)
    per_minute = 60 // model.tick_s
    detail = tuple(
        (context.minute_rpm[(i + 1) * per_minute - 1], loop_n, loop_ms, sim_n, sim_ms)
        for i, ((_, loop_ms, loop_n), (sim_n, _, sim_ms, _)) in enumerate(
            zip(router.stats.per_minute, recorder.per_minute, strict=False)
        )
    )
    return Outcome(
        trace=trace_path.name,
        minutes=minutes,
        peak_rpm=context.peak_rpm,
        loop_dyno_hours=loop_hours,
        loop_violations=router.stats.violation_minutes,
        sim_dyno_hours=float(sim["dyno_hours"]),
        sim_violations=int(sim["slo_violation_minutes"]),
        scale_calls=len(scale_calls),
        sim_scale_actions=int(sim["scale_actions"]),
        lines_sent=router.stats.requests,
        lines_stored=stored,
        h12=router.stats.h12,
        decisions=decisions,
        wall_s=time.monotonic() - began,
        detail=detail,
    )


def _traces(choice: str) -> list[Path]:
    if choice == "all":
        return sorted(TRACES.glob("*.csv"))
    path = Path(choice)
    if not path.exists():
        path = TRACES / (choice if choice.endswith(".csv") else f"{choice}.csv")
    if not path.exists():
        raise SystemExit(
            f"no trace {choice!r}; try one of {[p.stem for p in TRACES.glob('*.csv')]}"
        )
    return [path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default="Twitter_volume_AMZN", help="a name, a path or all")
    parser.add_argument("--minutes", type=int, default=90, help="simulated minutes per trace")
    parser.add_argument("--speed", type=float, default=30.0, help="simulated s per wall s")
    parser.add_argument("--peak-rpm", type=float, default=None, help="default: 10 dynos' worth")
    parser.add_argument("--service-ms", type=float, default=1000.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detail", action="store_true", help="print each minute too")
    args = parser.parse_args(argv)
    if args.minutes < 2 or args.speed <= 0:
        parser.error("--minutes must be at least 2 and --speed positive")
    model = Model(service_s=args.service_ms / 1000, concurrency=args.concurrency, seed=args.seed)
    database = os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE)
    load = os.getloadavg()
    print(
        f"closed loop: Procfile web + worker on PostgreSQL, fake Heroku + router; model "
        f"{model.concurrency} x {model.service_s * 1000:g} ms per dyno, SLO p95 queue "
        f"{model.slo_ms:g} ms, boot {model.boot_min_s:g}-{model.boot_max_s:g} s, seed "
        f"{model.seed}; load average {load[0]:.1f} on {os.cpu_count()} CPUs"
    )
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="deploybot-loop-") as temp:
        for path in _traces(args.trace):
            outcomes.append(
                run_loop(
                    path,
                    minutes=args.minutes,
                    speed=args.speed,
                    model=model,
                    peak_rpm=args.peak_rpm,
                    database_base=database,
                    workdir=Path(temp),
                )
            )
    print(
        "| trace (peak rpm) | dyno-hours: loop / simulate (diff) | SLO-violation minutes: "
        "loop / simulate (diff) | scale calls: loop / simulate | router lines sent / stored "
        "| H12 | worker ticks: decided / due | wall s | goal |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in outcomes:
        print(
            f"| {o.trace} ({o.peak_rpm:,.0f}) | {o.loop_dyno_hours:.2f} / {o.sim_dyno_hours:.2f} "
            f"({o.hours_diff:.1%}) | {o.loop_violations} / {o.sim_violations} "
            f"({o.violations_diff:.1%}) | {o.scale_calls} / {o.sim_scale_actions} "
            f"| {o.lines_sent:,} / {o.lines_stored:,} | {o.h12} "
            f"| {o.decisions} / {o.minutes * 60 // 15} | {o.wall_s:.0f} "
            f"| {'met' if o.met else 'not met'} |"
        )
    if args.detail:
        for o in outcomes:
            print(f"\n{o.trace}: minute, requests, web dynos and p95 queue ms: loop | simulate")
            for i, (rpm, loop_n, loop_ms, sim_n, sim_ms) in enumerate(o.detail):
                print(
                    f"{i:4d} {rpm:7.0f}  {loop_n:3d} {loop_ms:8.0f} | {sim_n:3d} {sim_ms:8.0f}"
                    f"{'  <' if (loop_n, loop_ms > 300) != (sim_n, sim_ms > 300) else ''}"
                )
    met = all(o.met for o in outcomes)
    print(f"goal (within {GOAL:.0%} on both figures, every trace): {'met' if met else 'not met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
