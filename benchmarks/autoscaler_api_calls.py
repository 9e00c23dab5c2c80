"""How many Heroku API calls the real autoscaler makes per app per hour, and so how many
apps one account can autoscale within Heroku's 4,500 requests an hour.

Runs `bot.worker.autoscale.Autoscaler` (the worker's tick, unchanged) for one simulated hour of
15 s ticks against the fake Heroku over real HTTP and a fresh SQLite database, with drained
traffic written before each tick, and counts the requests the fake Heroku receives:

- steady: traffic inside the target band all hour (no scaling);
- busy: traffic steps between 600 and 3,000 rpm every 15 minutes (rpm target 600 per
  dyno), so the autoscaler scales up and down several times an hour, and lists dynos
  while new ones boot (45 s).

    .venv/bin/python -m benchmarks.autoscaler_api_calls [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Config
from bot.metrics.aggregate import Window
from bot.metrics.store import MetricsStore
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.slack import FakeSlack
from bot.services import Services
from bot.store.autoscale_settings import AutoscaleStore, Settings
from bot.store.db import Database
from bot.worker.autoscale import Autoscaler
from policies.budget import CAPACITY, RESERVE
from policies.sketch import Sketch

KEY = "bench-heroku-key"
TICK = timedelta(seconds=15)
HOUR_TICKS = 240
START = datetime(2026, 6, 3, 12, 0, 30, tzinfo=UTC)


def _rpm(scenario: str, tick: int) -> int:
    if scenario == "steady":
        return 600
    return 3000 if (tick // 60) % 2 == 1 else 600  # 15 minutes each


def measure(scenario: str) -> dict[str, object]:
    heroku = FakeHeroku(api_keys=(KEY,), boot_seconds=45)
    heroku.add_app("myapp", formation={"web": (1, "standard-1x")})
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
        services = Services(config)
        AutoscaleStore(services.db).save(
            Settings("myapp", "on", 1, 10, "rpm", 600.0, "UADMIN01", START)
        )
        autoscaler = Autoscaler(services, lambda channel, text: None)
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
            heroku.advance(TICK.total_seconds())
        calls = [r for r in heroku.requests if r.path.startswith("/apps/myapp")]
        services.db.dispose()
    per_hour = len(calls)
    return {
        "scenario": scenario,
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
    results = [measure("steady"), measure("busy")]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"One simulated hour of {HOUR_TICKS} ticks (every {TICK.seconds} s) per scenario.")
    for r in results:
        print(
            f"{r['scenario']:>7}: {r['api_calls_per_hour']:4} API calls/h, "
            f"{r['scale_actions_per_hour']:3} scale actions/h, {r['by_request']} -> "
            f"{r['apps_per_account']} apps within {CAPACITY - RESERVE:,}/h "
            f"({CAPACITY:,} less the {RESERVE} reserve)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
