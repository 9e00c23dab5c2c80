"""End-to-end drain ingestion: the corpus of `benchmarks/drain.py` POSTed to deploybot's
web process, started from the Procfile's `web:` line exactly as the ack benchmark starts it.

A drain token is written to a fresh SQLite database before gunicorn starts; 4 keep-alive
clients then POST the bodies (250 frames each, as Logplex batches) and the figure is lines
accepted per second of wall time, with the count the database holds after a final flush
(gunicorn's worker_exit hook) checked against what was sent.

    .venv/bin/python -m benchmarks.drain_e2e [--lines 200000] [--clients 4]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.ack_latency import Fakes, Server, dyno_env, procfile_web_line
from benchmarks.drain import APP, START, count_lines, make_corpus
from bot.metrics.aggregate import WINDOW_SECONDS
from bot.metrics.store import MetricsStore
from bot.store.db import Database
from bot.store.drains import Drains
from policies.logplex import parse_body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    bodies = make_corpus(args.lines)
    lines = count_lines(bodies)
    temp = Path(tempfile.mkdtemp(prefix="deploybot-drain-"))
    database_url = f"sqlite:///{temp / 'deploybot.sqlite3'}"
    database = Database(database_url)
    database.migrate()
    drain = Drains(database).get_or_create(APP, "http://127.0.0.1", "UBENCH", datetime.now(UTC))
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, temp, ignore_errors=True)
        fakes = stack.enter_context(Fakes())
        assert fakes.endpoints is not None
        server = Server(
            "deploybot",
            procfile_web_line(),
            dyno_env(path, database_url, fakes.endpoints),
            temp / "web.log",
        )
        stack.callback(server.stop)
        server.start()
        url = f"{server.base}/drain/{drain.token}"
        tickets = itertools.count()
        failures: list[str] = []

        def client() -> None:
            with requests.Session() as session:
                while (i := next(tickets)) < len(bodies):
                    response = session.post(
                        url,
                        data=bodies[i],
                        headers={
                            "Content-Type": "application/logplex-1",
                            "Logplex-Frame-Id": f"bench-{i}",
                            "Logplex-Msg-Count": str(bodies[i].count(b"\n")),
                        },
                        timeout=30,
                    )
                    if response.status_code != 204:
                        failures.append(str(response.status_code))

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        server.stop()  # worker_exit flushes what each worker still holds
        end = START + lines // 400 + 2 * WINDOW_SECONDS
        stored = sum(w.requests for w in MetricsStore(database).windows(APP, START - 60, end))
    print(
        f"{lines:,} lines in {len(bodies)} POSTs from {args.clients} clients to gunicorn "
        f"({procfile_web_line()})"
    )
    print(f"end to end: {lines / wall:,.0f} lines/s ({wall:.2f} s); failed POSTs: {len(failures)}")
    expected = sum(len(parse_body(body).requests) for body in bodies)
    print(f"router lines stored after the final flush: {stored:,} of {expected:,} sent")
    return 0 if not failures and stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
