"""CPU per ack in one process: signed `/deploy` slash commands through ours' WSGI app and the
bare bolt app's (`benchmarks/bare_app.py`), called directly, beside each other.

`ack_latency.py` times acks over HTTP under gunicorn, where the machine's other work and
ours' background jobs share the CPUs with the acks. This isolates what each app's own code
costs per ack: no sockets, no gunicorn, no other thread of ours doing work.

How it is made fair:
- Both apps are built by their own `create_app()`, as gunicorn builds them from the
  Procfile's line, in one process, from the same dyno environment contract
  (`ack_latency.dyno_env`, with its fakes of Heroku and Slack in a process of their own:
  bolt calls Slack's `auth.test` on each app's first request, and no ack calls anything
  after it) and the same signing secret. Ours gets a SQLite file (no ack touches the
  database); bare bolt's app never does.
- Both receive the same requests through the same harness: a WSGI environ per request,
  built (body signed, werkzeug's `EnvironBuilder`) before its clock starts. The clock is
  the calling thread's CPU time (`time.thread_time_ns`, kernel time included: a pipe
  write's wake-up of another process counts), so other work on a shared machine does not
  move it much. Two figures from calling the app: to its answer's body read (what a
  client waits for: gunicorn sends the body, then calls `close`), and to the end of the
  answer's `close` (all the CPU the request costs its thread).
- Ours' background runner runs in a child process, as under gunicorn, and each ack still
  pickles its job and writes it into the child's pipe; only the jobs themselves are
  replaced by functions that do nothing, so that no background work competes with the
  acks (its effect is `ack_latency.py`'s to show).
- The apps take turns request by request (bare, ours, ours, bare, ...), after a warm-up
  of each, so that both meet the machine in the same moments; the difference printed is
  the median of each pair's difference (ours' request minus the bare app's beside it).

`--profile` adds cProfile's top functions (by own time) for each app over one block.

    .venv/bin/python benchmarks/ack_cpu.py [--requests 5000] [--block 500]
        [--commands status,scale] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `benchmarks` is no installed package; this tree's code first

from benchmarks.ack_latency import (  # noqa: E402
    ADMIN,
    COMMANDS,
    SIGNING_SECRET,
    Fakes,
    dyno_env,
)
from bot.sandbox.slack_requests import sign, slash_command  # noqa: E402

WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def environs(command: str, n: int) -> list[dict[str, Any]]:
    """`n` signed `/deploy` requests as WSGI environs, each with a response_url of its own."""
    out = []
    for i in range(n):
        url = f"http://127.0.0.1:9/commands/T0BENCH/{i}/secret{i}"
        body = slash_command(COMMANDS[command](i), url, user_id=ADMIN)
        builder = EnvironBuilder(
            path="/slack/events", method="POST", data=body, headers=sign(SIGNING_SECRET, body)
        )
        out.append(builder.get_environ())
    return out


def call(
    app: WSGI, environ: dict[str, Any], clock: Callable[[], int] = time.thread_time_ns
) -> tuple[int, int]:
    """When the answer's body was all read, and when the server's `close` returned."""
    status: list[str] = []
    response = app(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        body = b"".join(response)
        answered = clock()
    finally:
        getattr(response, "close", lambda: None)()
    closed = clock()
    if not status or not status[0].startswith("200"):
        raise SystemExit(f"{status} {body[:200]!r}")
    return answered, closed


def timed(app: WSGI, batch: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """CPU nanoseconds per request to the answer, and to the end of `close`."""
    clock = time.thread_time_ns
    answers, totals = [], []
    for environ in batch:
        started = clock()
        answered, closed = call(app, environ, clock)
        answers.append(answered - started)
        totals.append(closed - started)
    return answers, totals


def build_ours() -> tuple[WSGI, Callable[[], None]]:
    from bot.web.app import create_app

    web = create_app()
    services = web.extensions["deploybot"]
    pool = services.background
    # The jobs do nothing (see the docstring); the ack's pickling and pipe write stay.
    for name in list(pool._jobs):
        pool._jobs[name] = _nothing
    services.start_background_process()
    return web, lambda: pool.close(wait=True)


def _nothing(*args: Any) -> None:
    pass


def build_bare() -> WSGI:
    from benchmarks.bare_app import create_app

    return create_app()


def profile(name: str, app: WSGI, batch: list[dict[str, Any]], top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for environ in batch:
        call(app, environ)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print(f"\n--- {name}: {len(batch)} requests, top {top} by own time ---")
    print("\n".join(out.getvalue().splitlines()[4:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="per app per command")
    parser.add_argument("--block", type=int, default=500, help="environs built at a time")
    parser.add_argument("--commands", default="status,scale")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    temp = Path(tempfile.mkdtemp(prefix="deploybot-ackcpu-"))
    database = f"sqlite:///{temp / 'deploybot.sqlite3'}"
    path = os.environ.get("PATH", "/usr/bin:/bin")
    with Fakes() as fakes:
        assert fakes.endpoints is not None
        os.environ.update(dyno_env(path, database, fakes.endpoints))
        os.environ["PORT"] = "5000"  # checked at start, never bound here
        ours, stop = build_ours()
        logging.getLogger().setLevel(logging.WARNING)  # start-up's lines said, quiet now
        try:
            run({"bare": build_bare(), "ours": ours}, args)
        finally:
            stop()
    return 0


def run(apps: dict[str, WSGI], args: argparse.Namespace) -> None:
    print(
        f"{'command':8} {'app':5} {'answer µs':>10} {'p99':>8} {'with close µs':>14} {'p99':>8}"
        "  (medians and p99s of every request's CPU time)"
    )
    for command in args.commands.split(","):
        for app in apps.values():  # warm-up: imports, caches
            timed(app, environs(command, 200))
        answers: dict[str, list[int]] = {name: [] for name in apps}
        totals: dict[str, list[int]] = {name: [] for name in apps}
        for start in range(0, args.requests, args.block):
            count = min(args.block, args.requests - start)
            batches = {name: environs(command, count) for name in apps}
            for i in range(count):  # one request each in turn, whoever goes first alternating
                for name in ("bare", "ours") if i % 2 == 0 else ("ours", "bare"):
                    answer, total = timed(apps[name], batches[name][i : i + 1])
                    answers[name] += answer
                    totals[name] += total
        for name in ("bare", "ours"):
            figures = [
                f"{statistics.median(ns) / 1000:{width}.1f}"
                f" {statistics.quantiles(ns, n=100)[98] / 1000:8.1f}"
                for ns, width in ((answers[name], 10), (totals[name], 14))
            ]
            print(f"{command:8} {name:5} {' '.join(figures)}")
        extra = [
            statistics.median(o - b for o, b in zip(ns["ours"], ns["bare"], strict=True)) / 1000
            for ns in (answers, totals)
        ]
        print(
            f"{command:8} ours - bare (median of the pairs' differences): {extra[0]:.1f} µs to"
            f" the answer, {extra[1]:.1f} µs with close"
        )
        if args.profile:
            for name, app in apps.items():
                profile(f"{command} {name}", app, environs(command, args.block), 25)


if __name__ == "__main__":
    sys.exit(main())
