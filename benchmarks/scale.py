"""The worker at fleet scale: 10, 100 and 1,000 autoscaled, drained apps in PostgreSQL.

For each fleet size a schema of its own is created, migrated and filled, then a child
process (the "worker process", so its peak RSS is the worker's alone) runs the worker's
real jobs (`bot.worker.main.Worker`) against it and the fake Heroku (served by this
process, over real HTTP):

- a first tick (reads every app's formation once), then two steady ticks (the table shows
  both; the goal line takes the worse: whether a tick's range has moved on by a
  minute, and so decodes about 15 new stored windows per app, is chance of timing);
- one tick with the forecast refresh (every app reloads its per-minute history at once,
  as all do at start and each does every 5 minutes), and one scan tick (every 20th tick
  reads every row id of the samples' half hour, not only new ones: `bot.metrics.recent`);
- one compaction run over exactly one minute of new data: an untimed run folds what
  seeding left, then one minute of parts (2 web dynos x 2 gunicorn workers per 10 s
  window) and one minute of fine windows crossing the 48-hour line are written, and the
  run timed is `MetricsStore.compact` at the clock where that minute has settled;
- one retention run (request keys, drain ids, decisions, sent alerts).

The fleet is steady: each app's traffic is what its 2 web dynos should serve, and traffic
is seeded 15 minutes past the seeding time, so the ticks see whole minutes at that rate
(the scale actions they took are printed: none expected).

While the child runs, this process polls `pg_stat_activity` for the child's connections
(its `application_name`) and reports the most held at once.

History per app: the 10-app fleet gets the full 48 hours of 10 s windows, 35 days of minute
rollups and 7 days of minute counts. The bigger fleets get less, to keep seeding within
minutes on a 2-core machine: 100 apps 6 hours of 10 s windows, 1,000 apps 1 hour, both with
the minute counts the forecast reads (a day and a week back). The jobs' work does not depend
on history length, and the last section shows it: compaction of one new minute with 1 day
and with 7 days of history standing, in two schemas, runs interleaved, medians compared.

Rows per app per day and rows standing are derived from the jobs' intervals and the
retention constants in the code (a tick every 15 s, 10 s windows, ...), not from the seeded
history. Logging is set to WARNING in the child: the per-app "autoscale decision" INFO
line is not timed.

    .venv/bin/python -m benchmarks.scale [--sizes 10,100,1000] [--database-url URL]

`BENCH_SCALE_PROFILE_DIR=DIR` writes a cProfile file per job (times then include cProfile's
overhead).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from bot.metrics.aggregate import Window
from bot.metrics.recent import SCAN_EVERY
from bot.metrics.store import BATCH_SECONDS, KEEP_COARSE, KEEP_FINE, KEEP_MINUTES, SETTLED
from bot.store.db import Database, pool_size
from policies.sketch import Sketch

KEY = "bench-heroku-key"
APP_NAME = "deploybot-bench-scale"  # the child's application_name in pg_stat_activity
PARTS = 4  # 2 web dynos x 2 gunicorn workers, one part each per 10 s window
DYNOS = 2  # web dynos per app, in the fake Heroku and in the target
RPM = 1200
DAY = 86400
AHEAD = 15 * 60  # seconds of traffic seeded past the seeding time (see `seed`)

GOALS = {
    "rss_mb": 300.0,
    "steady_tick_s": 1.5,
    "forecast_tick_s": 15.0,
    "compaction_s": 10.0,
    "connections": 20,
}


def _template(requests: int, buckets: int, seed: int) -> str:
    """A window document minus its app and start, as the JSON text that follows them."""
    rng = random.Random(seed)
    service, connect, queue = Sketch(), Sketch(), Sketch()
    for _ in range(buckets):
        service.add(rng.lognormvariate(4.5, 0.6), max(1, requests // buckets))
        connect.add(rng.choice((0.0, 1.0, 2.0)))
        queue.add(rng.lognormvariate(1.0, 1.0))
    window = Window(
        app="x",
        start=0,
        requests=requests,
        statuses={"2xx": requests - 2, "5xx": 2},
        dynos={"web.1": requests // 2, "web.2": requests - requests // 2},
        service=service,
        connect=connect,
        queue=queue,
    )
    document = window.to_dict()
    del document["app"], document["start"]
    return json.dumps(document)[1:]


def _windows_sql(
    apps: int, first: int, last: int, step: int, resolution: int, folded: bool, copies: int
) -> str:
    # Server-side generation: seeding millions of rows from Python would take the runtime.
    tail = _template(RPM // 6 // (copies if not folded else 1), 40, resolution + copies)
    tail = tail.replace("'", "''")
    return (
        "INSERT INTO metric_windows (app, resolution, start, data, folded) "
        f"SELECT 'app-' || lpad(a::text, 4, '0'), {resolution}, s, "
        f"('{{\"app\": \"app-' || lpad(a::text, 4, '0') || '\", \"start\": ' || s || ', "
        f"{tail}')::json, {str(folded).lower()} "
        f"FROM generate_series(0, {apps - 1}) a, generate_series({first}, {last - 1}, {step}) s, "
        f"generate_series(1, {copies}) c"
    )


def seed(url: str, apps: int, fine_hours: float, coarse_days: float, now: int) -> None:
    """History, the last minutes' unfolded parts, settings and recent decisions."""
    settled = (now - SETTLED) // BATCH_SECONDS * BATCH_SECONDS
    new_from = settled - BATCH_SECONDS  # one compaction interval of new data
    fine_from = max(new_from - int(fine_hours * 3600), now - KEEP_FINE) // 60 * 60
    crossing = (now - KEEP_FINE) // 60 * 60 - 60  # the minute that crosses 48 h on this run
    minute = now // 60
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(_windows_sql(apps, fine_from, new_from, 10, 10, True, 1))
        if fine_from > crossing:
            db.execute(_windows_sql(apps, crossing, crossing + 60, 10, 10, True, 1))
        if coarse_days:
            coarse_from = max(now - KEEP_FINE - int(coarse_days * DAY), now - KEEP_COARSE)
            db.execute(_windows_sql(apps, coarse_from // 60 * 60, crossing, 60, 60, True, 1))
        db.execute(_windows_sql(apps, new_from, now // 10 * 10, 10, 10, False, PARTS))
        # The traffic goes on while the child runs: folded windows for the next minutes,
        # so every tick sees whole minutes at the steady rate (with none, the last minutes
        # empty out, and the fleet scales down during the ticks timed).
        db.execute(_windows_sql(apps, now // 10 * 10, now + AHEAD, 10, 10, True, 1))
        # The forecast's minute counts: all of them for the full history, else the ranges
        # it reads (today's 3 hours, and a day and a week back around the same time).
        if coarse_days >= 7:
            ranges = [(minute - KEEP_MINUTES // 60, minute - 3)]
        else:
            ranges = [(minute - lag - 190, minute - lag + 10) for lag in (0, 1440, 10080)]
        for first, last in ranges:
            db.execute(
                "INSERT INTO metric_minutes (app, minute, requests) "
                "SELECT 'app-' || lpad(a::text, 4, '0'), m, %s FROM generate_series(0, %s) a, "
                "generate_series(%s, %s) m ON CONFLICT DO NOTHING",
                (RPM, apps - 1, first, min(last, minute - 3)),
            )
        db.execute(
            "INSERT INTO autoscale_settings (app, mode, min, max, target_kind, target_value, "
            "updated_by, updated_at) SELECT 'app-' || lpad(a::text, 4, '0'), 'on', 1, 10, "
            "'rpm', %s, 'UBENCH', now() FROM generate_series(0, %s) a",
            # Each app's RPM is exactly what its 2 web dynos should serve: a steady fleet,
            # so a steady tick decides "no change" (at 1,200 rpm per dyno every app would
            # scale down to 1, and the tick timed would be 1,000 scale actions).
            (RPM // DYNOS, apps - 1),
        )
        db.execute(
            "INSERT INTO autoscale_decisions (app, at, actual, desired, recommendation, acted, "
            "reason) SELECT 'app-' || lpad(a::text, 4, '0'), to_timestamp(%s - t * 15), 2, 2, "
            "2, false, 'steady' FROM generate_series(0, %s) a, generate_series(1, 40) t",
            (now, apps - 1),
        )
        db.execute("ANALYZE")


def add_history(url: str, apps: int, now: int, days_from: float, days_to: float) -> None:
    """More coarse history (older than 48 h), to show compaction does not look at it."""
    base = now - KEEP_FINE
    with psycopg.connect(url, autocommit=True) as db:
        first, last = base - int(days_to * DAY), base - int(days_from * DAY) - 120
        db.execute(_windows_sql(apps, first // 60 * 60, last // 60 * 60, 60, 60, True, 1))
        db.execute("ANALYZE")


def new_minute(url: str, apps: int, clock: int) -> None:
    """The new data of one compaction run at `clock`: one minute of unfolded parts (the
    minute that settles at `clock`) and, unless history already has it, one minute of
    folded 10 s windows that crosses the 48-hour line at `clock`. Written as another
    application, so not counted as the worker's connection."""
    settled = (clock - SETTLED) // BATCH_SECONDS * BATCH_SECONDS
    crossing = (clock - KEEP_FINE) // 60 * 60 - 60
    with psycopg.connect(url, autocommit=True, application_name="bench-seed") as db:
        db.execute(_windows_sql(apps, settled - 60, settled, 10, 10, False, PARTS))
        found = db.execute(
            "SELECT count(*) FROM metric_windows WHERE resolution = 10 AND folded "
            "AND start >= %s AND start < %s",
            (crossing, crossing + 60),
        ).fetchone()
        if not (found and found[0]):
            db.execute(_windows_sql(apps, crossing, crossing + 60, 10, 10, True, 1))


def timed_compaction(worker, url: str, apps: int, clock: int) -> float:  # type: ignore[no-untyped-def]
    """One compaction run over exactly one minute of new data, timed. A first, untimed run
    at `clock` folds whatever seeding left (a few minutes of parts, crossing minutes);
    `new_minute` then writes the minute that settles one minute later, and the timed run
    is the worker's compaction at that clock. The clock is ahead of the wall, past the
    seeded traffic, and the parent moves it 2 minutes on for each run in a schema, so
    each run has a minute of its own."""
    worker.metrics.compact(clock)
    new_minute(url, apps, clock + 60)
    began = time.perf_counter()
    worker.metrics.compact(clock + 60)
    return time.perf_counter() - began


@contextmanager
def schema(base_url: str, name: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    from bot.store.db import normalize_url

    admin = create_engine(normalize_url(base_url))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {name}"))
    separator = "&" if "?" in base_url else "?"
    url = f"{base_url}{separator}options=-csearch_path%3D{name}"
    database = Database(url)
    try:
        database.migrate()
        database.dispose()
        yield url
    finally:
        database.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


class ConnectionWatch:
    """The most connections `application_name` held at once, polled every 50 ms."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as db:
            while not self._stop.wait(0.05):
                row = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (APP_NAME,),
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)


def run_child(
    url: str, heroku_url: str, job: str, watch_url: str, apps: int, clock: int
) -> dict[str, float]:
    env = {**os.environ, "PGAPPNAME": APP_NAME}
    command = [sys.executable, "-m", "benchmarks.scale", "--child", job, "--database-url", url]
    command += ["--heroku-url", heroku_url, "--apps", str(apps), "--clock", str(clock)]
    with ConnectionWatch(watch_url) as watch:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["connections"] = watch.peak
    return result


def child(job: str, url: str, heroku_url: str, apps: int, clock: int) -> int:
    """The worker process: its real jobs, timed."""
    import logging
    import resource

    from bot.config import Config
    from bot.worker.main import Worker

    logging.basicConfig(level=logging.WARNING)
    config = Config(
        database_url=url,
        heroku_api_key=KEY,
        heroku_api_url=heroku_url,
        admins=frozenset({"UBENCH"}),
    )
    worker = Worker(config)
    # Held as the running worker holds it: each scale asks the lease first.
    assert worker.lease.try_acquire(), "another worker holds this database's lease"
    out: dict[str, float] = {}

    profile_dir = os.environ.get("BENCH_SCALE_PROFILE_DIR")

    def timed(name: str, call) -> None:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        if profile_dir:  # where each job's time goes: one cProfile file per job
            import cProfile

            profile = cProfile.Profile()
            profile.runcall(call)
            profile.dump_stats(os.path.join(profile_dir, f"{name}-{apps}.prof"))
        else:
            call()
        out[name] = time.perf_counter() - began

    def acted() -> int:
        """Scale actions recorded so far: a steady tick must add none."""
        from sqlalchemy import text

        with worker.db.session() as session:
            query = text("SELECT count(*) FROM autoscale_decisions WHERE acted")
            return int(session.scalar(query) or 0)

    def compaction() -> None:
        out["compaction_s"] = timed_compaction(worker, url, apps, clock)

    if job == "all":
        timed("first_tick_s", worker.autoscale)
        before = acted()
        timed("steady_tick_s", worker.autoscale)
        worker._autoscaler()._history.clear()  # every app's forecast is due, as at start
        timed("forecast_tick_s", worker.autoscale)
        timed("steady_tick_2_s", worker.autoscale)
        # Every SCAN_EVERY-th call the recent-traffic read takes every row id in range, not
        # only new ones (`bot.metrics.recent`): time one such tick too.
        recent = worker._autoscaler()._recent
        recent._calls = SCAN_EVERY * (recent._calls // SCAN_EVERY + 1) - 1
        timed("scan_tick_s", worker.autoscale)
        out["scale_actions"] = acted() - before
        timed("compaction_total_s", compaction)
        timed("retention_s", worker.forget_request_keys)
    else:
        timed("compaction_total_s", compaction)
    worker.lease.release()
    worker.db.dispose()
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    return 0


def rows_per_day() -> list[tuple[str, str, str]]:
    """(table, rows per app per day, rows standing per app), from intervals and retention."""
    from bot.store.autoscale_settings import THIN_SECONDS
    from bot.store.drain_claims import KEEP as KEEP_DRAIN
    from bot.web.log_drain import CLAIM_INTERVAL
    from bot.worker.main import KEEP_DECISIONS, KEEP_OPENINGS, KEEP_THINNED_DECISIONS

    ticks = DAY // 15
    fine = DAY // 10
    # A web process's claimer commits one drain_claims row per CLAIM_INTERVAL at most,
    # holding every app's batch ids: rows per process, not per app nor per POST.
    claims = int(DAY / CLAIM_INTERVAL)
    keep_drain = int(KEEP_DRAIN.total_seconds())
    thinned = DAY // THIN_SECONDS * (KEEP_THINNED_DECISIONS - KEEP_DECISIONS).days
    return [
        (
            "metric_windows (10 s parts, before folding)",
            f"{fine * PARTS:,}",
            f"{(SETTLED + 60) // 10 * PARTS} (until the next run folds them)",
        ),
        (
            "metric_windows (10 s, folded)",
            f"{fine:,}",
            f"{KEEP_FINE // 10:,} (48 h)",
        ),
        ("metric_windows (1 min)", "1,440", f"{KEEP_COARSE // 60:,} (35 d)"),
        ("metric_minutes", "1,440", f"{KEEP_MINUTES // 60:,} (7 d 4 h)"),
        (
            "autoscale_decisions",
            f"{ticks:,}",
            f"{ticks * KEEP_DECISIONS.days + thinned:,} ({KEEP_DECISIONS.days} d, then one in "
            f"{THIN_SECONDS // 15} and every scale action to {KEEP_THINNED_DECISIONS.days} d)",
        ),
        (
            "drain_claims (per web process, every app together)",
            f"at most {claims:,}",
            f"at most {int(keep_drain / CLAIM_INTERVAL):,} ({keep_drain // 3600} h)",
        ),
        ("alert_outbox (sent, failed)", "only when something happens", "7 d of them"),
        ("incident_openings", "one per incident opened", f"{KEEP_OPENINGS.days} d of them"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--independence-apps", type=int, default=100)
    parser.add_argument("--child", choices=("all", "compact"), help=argparse.SUPPRESS)
    parser.add_argument("--heroku-url", help=argparse.SUPPRESS)
    parser.add_argument("--apps", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--clock", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.database_url, args.heroku_url, args.apps, args.clock)

    from bot.sandbox.fakes.heroku import FakeHeroku

    sizes = [int(s) for s in args.sizes.split(",")]
    history = {10: (48.0, 35.0), 100: (6.0, 0.0), 1000: (1.0, 0.0)}
    base = args.database_url
    watch_url = base
    heroku = FakeHeroku(api_keys=(KEY,))
    for n in range(max(sizes)):
        heroku.add_app(f"app-{n:04d}", formation={"web": (DYNOS, "standard-1x")})
    results = []
    with heroku:
        for apps in sizes:
            fine_hours, coarse_days = history.get(apps, (1.0, 0.0))
            with schema(base, f"bench_scale_{secrets.token_hex(4)}") as url:
                now = int(time.time())
                began = time.perf_counter()
                seed(url, apps, fine_hours, coarse_days, now)
                seeded = time.perf_counter() - began
                result = run_child(url, heroku.url, "all", watch_url, apps, now + AHEAD + 180)
                result.update(apps=apps, seed_s=seeded, fine_hours=fine_hours)
                result["coarse_days"] = coarse_days
                results.append(result)
                print(json.dumps(result), file=sys.stderr)
        independence = measure_independence(base, heroku.url, args.independence_apps, watch_url)
    report(results, independence)
    return 0


def measure_independence(
    base: str, heroku_url: str, apps: int, watch_url: str, runs: int = 5
) -> dict:
    """Compaction of one new minute with 1 day, and with 7 days, of history standing: two
    schemas, seeded alike but for the 6 more days, with `runs` runs on each interleaved
    (1 day, 7 days, 1 day, ...) so that the machine's load falls on both alike; median."""
    out: dict[str, object] = {"apps": apps, "runs": runs}
    with (
        schema(base, f"bench_scale_{secrets.token_hex(4)}") as one,
        schema(base, f"bench_scale_{secrets.token_hex(4)}") as seven,
    ):
        now = int(time.time())
        seed(one, apps, 24.0, 0.0, now)
        seed(seven, apps, 24.0, 0.0, now)
        add_history(seven, apps, now, 0.0, 5.0)
        times: dict[str, list[float]] = {"1 day": [], "7 days": []}
        for run in range(runs):
            for label, url in (("1 day", one), ("7 days", seven)):
                # Each run its own minute: the clock moves 2 minutes further each time.
                clock = now + AHEAD + 180 + 120 * run
                result = run_child(url, heroku_url, "compact", watch_url, apps, clock)
                times[label].append(result["compaction_s"])
        for label, url in (("1 day", one), ("7 days", seven)):
            with psycopg.connect(url) as db:
                row = db.execute("SELECT count(*) FROM metric_windows").fetchone()
            out[label] = {
                "median_s": statistics.median(times[label]),
                "runs": times[label],
                "rows": row[0] if row else 0,
            }
    return out


def report(results: list[dict], independence: dict) -> None:
    pool = pool_size()
    print(f"Worker jobs at fleet scale (PostgreSQL, pool {pool} per process, this machine).")
    print()
    print(
        "| apps | history per app | peak RSS | first tick | steady ticks | scan tick | "
        "tick + forecast refresh | compaction (1 min new) | retention run | max connections |"
    )
    print("|---:|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        history = f"{r['fine_hours']:g} h of 10 s" + (
            f" + {r['coarse_days']:g} d of 1 min" if r["coarse_days"] else ""
        )
        print(
            f"| {r['apps']:,} | {history} | {r['rss_mb']:.0f} MB | {r['first_tick_s']:.2f} s | "
            f"{r['steady_tick_s']:.2f} s, {r['steady_tick_2_s']:.2f} s | "
            f"{r['scan_tick_s']:.2f} s | {r['forecast_tick_s']:.2f} s | "
            f"{r['compaction_s']:.2f} s | {r['retention_s']:.2f} s | {r['connections']} |"
        )
    print()
    print(
        "Scale actions in the steady and forecast ticks (a steady fleet: none expected): "
        + ", ".join(f"{r['apps']:,} apps {r['scale_actions']}" for r in results)
        + ". Compaction: the timed run folds exactly one new minute (after an untimed run "
        "that folds what seeding left), as the worker's every-minute job does."
    )
    print()
    print("Rows per app, derived from the job intervals and the retention constants:")
    print()
    print("| table | rows per app per day | rows standing per app |")
    print("|---|---:|---:|")
    for table, per_day, standing in rows_per_day():
        print(f"| {table} | {per_day} | {standing} |")
    one, seven = independence["1 day"], independence["7 days"]
    ratio = seven["median_s"] / one["median_s"] if one["median_s"] else float("inf")
    print()
    print(
        f"Compaction of one new minute, {independence['apps']} apps, median of "
        f"{independence['runs']} runs each, interleaved: "
        f"1 day of history ({one['rows']:,} window rows) {one['median_s']:.3f} s, "
        f"7 days ({seven['rows']:,} rows) {seven['median_s']:.3f} s: ratio {ratio:.2f} "
        f"(runs: 1 day {', '.join(f'{t:.3f}' for t in one['runs'])}; "
        f"7 days {', '.join(f'{t:.3f}' for t in seven['runs'])})"
    )
    biggest = max(results, key=lambda r: r["apps"])
    n = biggest["apps"]
    print()
    steady = max(biggest["steady_tick_s"], biggest["steady_tick_2_s"])
    print(f"Goals (at {n:,} apps):")
    lines = [
        ("worker peak RSS", biggest["rss_mb"], GOALS["rss_mb"], "MB"),
        # The worse of the two: which one crosses a minute (and decodes it) is chance.
        ("steady tick (the worse of two)", steady, GOALS["steady_tick_s"], "s"),
        ("tick with forecast refresh", biggest["forecast_tick_s"], GOALS["forecast_tick_s"], "s"),
        ("compaction run", biggest["compaction_s"], GOALS["compaction_s"], "s"),
        ("connections held at once", biggest["connections"], GOALS["connections"], ""),
    ]
    for name, value, goal, unit in lines:
        verdict = "met" if value <= goal else "NOT met"
        print(f"- {name}: {value:.2f} {unit} (goal <= {goal:g} {unit}): {verdict}")
    verdict = "met" if abs(ratio - 1) <= 0.2 else "NOT met"
    print(
        f"- compaction time, 7 days vs 1 day of history: {ratio:.2f}x (goal within 20 %): {verdict}"
    )
    print(
        "- rows standing per app constant once retention has passed: met by construction "
        "(every table above has a retention period; see the table)"
    )


if __name__ == "__main__":
    sys.exit(main())
