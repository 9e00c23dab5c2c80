"""How long `status` takes when each platform call takes `--delay` seconds: its reads made
in turn (as before) against its reads made at once (`bot.platforms.together`).

Calls `status` of the real platform clients (`HerokuPlatform`, `BeanstalkPlatform`) against
the fake Heroku and the fake Beanstalk over real HTTP on 127.0.0.1, each fake answering
every request `--delay` seconds late (their `latency`). Both orders run against the same
fake with the same delay, alternating status by status; "in turn" swaps the pool for a
loop over the same reads, nothing else differs. Beanstalk forgets when its version went
out before each status, so every status makes all five reads (as the first one after a
deploy does; later ones skip the events read). Prints the median, min and max wall time.

    .venv/bin/python -m benchmarks.status_reads [--delay 0.1] [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

from bot.platforms import beanstalk as beanstalk_module
from bot.platforms import heroku as heroku_module
from bot.sandbox.fakes.beanstalk import FakeBeanstalk
from bot.sandbox.fakes.heroku import FakeHeroku

KEY = "bench-heroku-key"
AWS_KEY = "AKIDBENCHEXAMPLE01"
REGION = "us-east-1"


def in_turn(reads: Sequence[Callable[[], Any]]) -> list[Any]:
    """The reads one after another, as `status` made them before."""
    return [read() for read in reads]


@contextmanager
def reads_made(order: str):  # type: ignore[no-untyped-def]
    """`status` as it is ("at once"), or with the pool swapped for `in_turn`."""
    saved = heroku_module.read_together, beanstalk_module.read_together
    if order == "in turn":
        heroku_module.read_together = beanstalk_module.read_together = in_turn  # type: ignore[assignment]
    try:
        yield
    finally:
        heroku_module.read_together, beanstalk_module.read_together = saved


def timed(status: Callable[[], object], runs: int) -> dict[str, list[float]]:
    """Each order's wall times in ms, the orders alternating run by run."""
    status()  # connections opened, the client built: neither order pays for them
    times: dict[str, list[float]] = {"in turn": [], "at once": []}
    for run in range(runs):
        orders = ("in turn", "at once") if run % 2 == 0 else ("at once", "in turn")
        for order in orders:
            with reads_made(order):
                started = time.perf_counter()
                status()
                times[order].append((time.perf_counter() - started) * 1000)
    return times


def heroku(delay: float, runs: int) -> dict[str, list[float]]:
    with FakeHeroku(api_keys=(KEY,)) as fake:
        fake.add_app("myapp", formation={"web": (2, "standard-1x"), "worker": (1, "standard-1x")})
        platform = heroku_module.HerokuPlatform(KEY, fake.url)
        fake.latency = delay
        return timed(lambda: platform.status("myapp"), runs)


def beanstalk(delay: float, runs: int) -> dict[str, list[float]]:
    fake = FakeBeanstalk()
    fake.add_environment("shop-prod", region=REGION, access_key=AWS_KEY, application="shop")
    with fake:
        os.environ.update(
            AWS_ACCESS_KEY_ID=AWS_KEY,
            AWS_SECRET_ACCESS_KEY="bench-secret",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL_ELASTIC_BEANSTALK=fake.url,
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        platform = beanstalk_module.BeanstalkPlatform(REGION)
        fake.latency = delay

        def status() -> None:
            platform._deployed.clear()  # every status reads all five
            platform.status("shop-prod")

        return timed(status, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per call (0.1)")
    parser.add_argument("--runs", type=int, default=10, help="statuses per order (10)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {
        "heroku": heroku(args.delay, args.runs),
        "beanstalk": beanstalk(args.delay, args.runs),
    }
    if args.json:
        print(json.dumps({"delay": args.delay, "runs": args.runs, "ms": results}))
        return
    print(f"status wall time, ms, {args.runs} runs each, every call answered {args.delay} s late")
    print(f"{'platform':<10} {'in turn: median (min-max)':>28} {'at once: median (min-max)':>28}")
    for name, times in results.items():
        cells = [
            f"{statistics.median(times[o]):.0f} ({min(times[o]):.0f}-{max(times[o]):.0f})"
            for o in ("in turn", "at once")
        ]
        print(f"{name:<10} {cells[0]:>28} {cells[1]:>28}")


if __name__ == "__main__":
    main()
