"""How many Heroku API calls the real autoscaler makes per app per hour, and so how many
apps one account can autoscale within Heroku's 4,500 requests an hour.

Runs `bot.worker.autoscale.Autoscaler` (the worker's tick, unchanged) for one simulated hour of
15 s ticks against the fake Heroku over real HTTP and a fresh SQLite database, with drained
traffic written before each tick, and counts the requests the fake Heroku receives:

- steady: traffic inside the target band all hour (no scaling);
- busy: traffic steps between 600 and 3,000 rpm every 15 minutes (rpm target 600 per
  dyno), so the autoscaler scales up and down several times an hour, and lists dynos
  while new ones boot (45 s);
- +worker: the same, and the app's `worker` type autoscaled too
  (`bot.worker.autoscale_workers`, target latency 30 s, min 0, max 10) from a real hirefire-resource
  endpoint (the sandbox's `bot.sandbox.job_queue`), whose queue is empty all hour (steady)
  or gets 240 jobs a minute every other quarter hour (busy), drained by the up workers.

The baseline, in the same run: the +worker scenarios with the formation refresh set to
1 s, below the 15 s tick, so every tick reads the formation, as the worker-type tick did
before it shared the web tick's formation knowledge; nothing else differs.

    .venv/bin/python -m benchmarks.autoscaler_api_calls [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Config
from bot.metrics.aggregate import Window
from bot.metrics.store import MetricsStore
from bot.registry import Registry
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.slack import FakeSlack
from bot.sandbox.job_queue import JobQueue, QueueEndpoint
from bot.services import Services
from bot.store.autoscale_settings import AutoscaleStore, Settings
from bot.store.db import Database
from bot.store.worker_autoscale_settings import WorkerAutoscaleStore, WorkerSettings
from bot.worker.autoscale import Autoscaler
from bot.worker.autoscale_workers import WorkerAutoscaler
from policies.budget import CAPACITY, RESERVE
from policies.sketch import Sketch

KEY = "bench-heroku-key"
TICK = timedelta(seconds=15)
HOUR_TICKS = 240
START = datetime(2026, 6, 3, 12, 0, 30, tzinfo=UTC)


def _rpm(scenario: str, tick: int) -> int:
    if scenario.startswith("steady"):
        return 600
    return 3000 if (tick // 60) % 2 == 1 else 600  # 15 minutes each


def _jobs(scenario: str, tick: int) -> int:
    """Jobs enqueued in a tick: none when steady; 60 (240 a minute) every other quarter
    hour when busy (a multiple of the tick's 15 seconds: they arrive 4 a second)."""
    if scenario.startswith("steady"):
        return 0
    return 60 if (tick // 60) % 2 == 1 else 0


def measure(scenario: str, every_tick: bool = False) -> dict[str, object]:
    heroku = FakeHeroku(api_keys=(KEY,), boot_seconds=45)
    heroku.add_app("myapp", formation={"web": (1, "standard-1x"), "worker": (1, "standard-1x")})
    workers = scenario.endswith("+worker")
    queue = JobQueue(lambda: heroku.now)
    endpoint = QueueEndpoint({"worker": queue}) if workers else None
    with heroku, FakeSlack() as slack, tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        Database(url).migrate()
        config = Config(
            database_url=url,
            slack_bot_token=slack.bot_token,
            slack_signing_secret="bench",
            slack_api_url=slack.api_url,
            heroku_api_key=KEY,
            heroku_api_url=heroku.url,
            admins=frozenset({"UADMIN01"}),
        )
        registry = None
        if endpoint is not None:
            endpoint.start()
            registry = Registry.parse(
                f"apps:\n  myapp:\n    platform: heroku\n    autoscale:\n"
                f"      queue_url: {endpoint.url}\n",
                "<bench registry>",
            )
        services = Services(config, registry=registry)
        AutoscaleStore(services.db).save(
            Settings("myapp", "on", 1, 10, "rpm", 600.0, "UADMIN01", START)
        )
        refresh = timedelta(seconds=1) if every_tick else None
        autoscaler = Autoscaler(services, lambda channel, text: None, formation_refresh=refresh)
        worker_scaler = WorkerAutoscaler(services, autoscaler)
        if workers:
            WorkerAutoscaleStore(services.db).save(
                WorkerSettings("myapp", "worker", "on", 0, 10, "latency", 30.0, "UADMIN01", START)
            )
        metrics = MetricsStore(services.db)
        acted = 0
        for tick in range(HOUR_TICKS):
            now = START + tick * TICK
            dynos = heroku.formation("myapp")["web"][0]
            per_window = _rpm(scenario, tick) // 6
            first = int((now - TICK).timestamp()) // 10 * 10
            windows = []
            for start in range(first, int(now.timestamp()) // 10 * 10, 10):
                sketch = Sketch()
                sketch.add(100.0, per_window)
                share = {f"web.{n}": per_window // dynos for n in range(1, dynos + 1)}
                windows.append(
                    Window(
                        app="myapp", start=start, requests=per_window, dynos=share, service=sketch
                    )
                )
            metrics.save(windows)
            acted += sum(1 for d in autoscaler.tick(now) if d.acted)
            if workers:
                acted += sum(1 for d in worker_scaler.tick(now) if d.acted)
            seconds = int(TICK.total_seconds())
            for _ in range(seconds):
                # Jobs arrive through the tick, not all at its start.
                queue.enqueue(_jobs(scenario, tick) // seconds, heroku.now)
                up = [d for d in heroku.dynos("myapp") if d["type"] == "worker"]
                heroku.advance(1)
                queue.drain(1, sum(1 for d in up if d["state"] == "up"))
        calls = [r for r in heroku.requests if r.path.startswith("/apps/myapp")]
        services.db.dispose()
        if endpoint is not None:
            endpoint.stop()
    per_hour = len(calls)
    return {
        "scenario": scenario + (" (read every tick)" if every_tick else ""),
        "ticks": HOUR_TICKS,
        "scale_actions_per_hour": acted,
        "api_calls_per_hour": per_hour,
        "by_request": _by_request(calls),
        "apps_per_account": (CAPACITY - RESERVE) // per_hour if per_hour else None,
    }


def _by_request(calls: list) -> dict[str, int]:  # type: ignore[type-arg]
    return dict(Counter(f"{call.method} {call.path}" for call in calls))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    # The first ticks have no whole minute of traffic yet and warn "metrics stale": noise here.
    logging.disable(logging.WARNING)
    # The token the app's endpoint and the bot share (both read HIREFIRE_TOKEN).
    os.environ.setdefault("HIREFIRE_TOKEN", "bench-hirefire-token")
    results = [
        measure("steady"),
        measure("busy"),
        measure("steady+worker"),
        measure("busy+worker"),
        measure("steady+worker", every_tick=True),
        measure("busy+worker", every_tick=True),
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"One simulated hour of {HOUR_TICKS} ticks (every {TICK.seconds} s) per scenario.")
    for r in results:
        print(
            f"{r['scenario']:>32}: {r['api_calls_per_hour']:4} API calls/h, "
            f"{r['scale_actions_per_hour']:3} scale actions/h, {r['by_request']} -> "
            f"{r['apps_per_account']} apps within {CAPACITY - RESERVE:,}/h "
            f"({CAPACITY:,} less the {RESERVE} reserve)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
