"""End-to-end drain ingestion into PostgreSQL: the corpus of `benchmarks/drain.py` POSTed to
deploybot's web process, started from the Procfile's `web:` line exactly as the ack
benchmark starts it, at two or more line rates.

A database of its own is made on the PostgreSQL server of --database-url (default
TEST_DATABASE_URL), migrated, and given a drain token before gunicorn starts; it is dropped
at the end. Several keep-alive senders (Logplex keeps several connections open to a drain)
then POST the bodies, 250 frames each with a unique `Logplex-Frame-Id`, for --seconds at each
rate: paced to the rate, or as fast as the server takes them for `max`. Printed per rate:

- router lines accepted per second of wall time;
- database writes per minute: transactions committed and rows written in that database
  (`pg_stat_database`, which counts only this database: other users of the server do not
  show), from just before the first POST until gunicorn has stopped, so the final flush
  (gunicorn's worker_exit hook) is included;
- all log lines per CPU-second used by gunicorn's processes (less sensitive than lines/s
  to what else the machine runs), and the CPU seconds of gunicorn, of the PostgreSQL
  server processes serving gunicorn's connections (when the server runs on this machine;
  their share of the cores is taken from gunicorn's) and of the senders;
- the router lines the database holds afterwards, checked against what was sent.

Goal: >= 150,000 router lines/s at `max`, and writes per minute that do not grow with the
line rate: commits/min and rows/min are each called flat when the count at the fastest
rate is at most FLAT_RATIO times the one at the slowest. Missing either is reported, not
an error.

    .venv/bin/python -m benchmarks.drain_e2e [--rates 20000,max] [--seconds 20] [--senders 8]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks.ack_latency import Fakes, Server, dyno_env, procfile_web_line
from benchmarks.drain import APP, START, make_corpus
from bot.metrics.aggregate import WINDOW_SECONDS
from bot.metrics.store import MetricsStore
from bot.store.db import Database, normalize_url
from bot.store.drains import Drains
from policies.logplex import parse_body

GOAL_LINES_PER_SECOND = 150_000
# Writes per minute at the fastest rate at most this many times those at the slowest,
# where the line rate itself grows several-fold (about 8x from 20,000 to max): "flat".
FLAT_RATIO = 1.5


@contextlib.contextmanager
def scratch_database(base_url: str) -> Any:
    """A fresh database on the server of `base_url`; yields its URL; drops it afterwards."""
    name = f"bench_drain_{os.urandom(4).hex()}"
    admin = create_engine(normalize_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        head, _, tail = base_url.partition("?")
        yield head.rsplit("/", 1)[0] + f"/{name}" + (f"?{tail}" if tail else "")
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def database_writes(url: str) -> tuple[int, int]:
    """(transactions committed, rows inserted + updated + deleted) so far in `url`'s database."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            commits, rows = connection.execute(
                text(
                    "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
                    "FROM pg_stat_database WHERE datname = current_database()"
                )
            ).one()
        return int(commits), int(rows)
    finally:
        engine.dispose()


def database_cpu(url: str) -> dict[int, float] | None:
    """CPU seconds used so far by each server process connected to `url`'s database, other
    than this query's, or None when the server is not on this machine (no /proc to read)."""
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            pids = connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            ).all()
    finally:
        engine.dispose()
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since, or not readable
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def run_rate(
    rate: float | None,
    seconds: float,
    senders: int,
    bodies: list[bytes],
    lines_per_body: list[int],
    database_url: str,
    token: str,
    temp: Path,
) -> dict[str, Any]:
    """One gunicorn, `seconds` of POSTs at `rate` lines/s (None: as fast as it goes)."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    database = Database(database_url)
    with database.engine.begin() as connection:  # each rate starts from empty windows
        connection.execute(text("DELETE FROM metric_windows"))
        connection.execute(text("DELETE FROM metric_minutes"))
    database.dispose()
    with contextlib.ExitStack() as stack:
        fakes = stack.enter_context(Fakes())
        assert fakes.endpoints is not None
        server = Server(
            "deploybot",
            procfile_web_line(),
            dyno_env(path, database_url, fakes.endpoints),
            temp / f"web-{rate or 'max'}.log",
        )
        stack.callback(server.stop)
        server.start()
        split = urllib.parse.urlsplit(f"{server.base}/drain/{token}")
        run = os.urandom(3).hex()  # frame ids unique across rates: each is a new batch
        tickets = itertools.count()
        failures: list[str] = []
        sent_lines = [0] * senders
        sent_bodies: list[int] = []
        lock = threading.Lock()
        interval = senders * (sum(lines_per_body) / len(bodies)) / rate if rate else 0.0
        before = database_writes(database_url)
        database_before = database_cpu(database_url)
        cpu_before = (server.cpu_seconds(), time.process_time())
        started = time.perf_counter()
        stop_at = started + seconds

        def sender(n: int) -> None:
            # http.client, not requests: for a 25 KB POST requests costs the sending process
            # about 1 ms of CPU against 0.3 ms (measured against a do-nothing local server),
            # and the 8 senders share one GIL, so on a loaded machine requests limited what
            # was offered to the server. One keep-alive connection per sender, as Logplex
            # keeps several open to a drain.
            next_at = started + n * interval / senders
            connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
            try:
                while (now := time.perf_counter()) < stop_at:
                    if interval:
                        if now < next_at:
                            time.sleep(next_at - now)
                        next_at += interval
                    i = next(tickets)
                    body = bodies[i % len(bodies)]
                    connection.request(
                        "POST",
                        split.path,
                        body=body,
                        headers={
                            "Content-Type": "application/logplex-1",
                            "Logplex-Frame-Id": f"bench-{run}-{i}",
                            "Logplex-Msg-Count": str(body.count(b"\n")),
                        },
                    )
                    response = connection.getresponse()
                    response.read()
                    if response.status == 204:
                        sent_lines[n] += lines_per_body[i % len(bodies)]
                        with lock:
                            sent_bodies.append(i % len(bodies))
                    else:
                        failures.append(str(response.status))
            finally:
                connection.close()

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        server_cpu = server.cpu_seconds() - cpu_before[0]
        sender_cpu = time.process_time() - cpu_before[1]
        database_after = database_cpu(database_url)
        # Connections opened during the run count from zero; the final flush is not in it.
        database_used = (
            sum(
                used - (database_before or {}).get(pid, 0.0) for pid, used in database_after.items()
            )
            if database_after is not None
            else math.nan
        )
        server.stop()  # worker_exit flushes what each worker still holds
        after = database_writes(database_url)
        log_text = server.log_text()
    database = Database(database_url)
    try:
        end = START + len(bodies) * 250 // 400 + 2 * WINDOW_SECONDS
        stored = sum(w.requests for w in MetricsStore(database).windows(APP, START - 60, end))
    finally:
        database.dispose()
    routed = {}
    expected = 0
    for i in sent_bodies:
        if i not in routed:
            routed[i] = len(parse_body(bodies[i]).requests)
        expected += routed[i]
    minutes = wall / 60
    return {
        "rate": rate,
        "wall": wall,
        "router_lines": expected,
        "router_lines_per_s": expected / wall,
        "all_lines_per_s": sum(sent_lines) / wall,
        "posts": len(sent_bodies),
        "failures": len(failures),
        "commits_per_min": (after[0] - before[0]) / minutes,
        "rows_per_min": (after[1] - before[1]) / minutes,
        "stored": stored,
        "server_cpu": server_cpu,
        "database_cpu": database_used,
        "sender_cpu": sender_cpu,
        "lines_per_server_cpu_s": sum(sent_lines) / server_cpu if server_cpu else math.nan,
        "tracebacks": log_text.count("Traceback"),
        "log_tail": "\n".join(log_text.splitlines()[-15:]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="corpus size, cycled")
    parser.add_argument(
        "--rates",
        default="20000,max",
        help="comma-separated log lines/s to send at; `max`: as fast as it goes",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="time at each rate")
    parser.add_argument("--senders", type=int, default=8, help="concurrent keep-alive senders")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="a PostgreSQL server to make the scratch database on (default TEST_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if not (args.database_url or "").startswith(("postgres://", "postgresql://")):
        parser.error("--database-url (or TEST_DATABASE_URL) must name a PostgreSQL server")
    rates = [None if part == "max" else float(part) for part in args.rates.split(",")]
    bodies = make_corpus(args.lines)
    lines_per_body = [body.count(b"\n") for body in bodies]
    temp = Path(tempfile.mkdtemp(prefix="deploybot-drain-"))
    results = []
    with contextlib.ExitStack() as stack:
        if not os.environ.get("KEEP_DRAIN_LOGS"):
            stack.callback(shutil.rmtree, temp, ignore_errors=True)
        database_url = stack.enter_context(scratch_database(args.database_url))
        database = Database(database_url)
        database.migrate()
        drain = Drains(database).get_or_create(APP, "http://127.0.0.1", "UBENCH", datetime.now(UTC))
        database.dispose()
        for rate in rates:
            results.append(
                run_rate(
                    rate,
                    args.seconds,
                    args.senders,
                    bodies,
                    lines_per_body,
                    database_url,
                    drain.token,
                    temp,
                )
            )
    print(
        f"{args.senders} senders, {args.seconds:.0f} s per rate, to {procfile_web_line()} "
        f"on PostgreSQL (WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY', '2')})\n"
    )
    print(
        "| asked (lines/s) | all lines/s | router lines/s | POSTs | commits/min | rows/min "
        "| lines per gunicorn CPU-s | CPU-s gunicorn / PostgreSQL / senders "
        "| router lines stored / sent |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ok = True
    for r in results:
        asked = "max" if r["rate"] is None else f"{r['rate']:,.0f}"
        match = "all" if r["stored"] == r["router_lines"] else "**MISMATCH**"
        ok &= r["stored"] == r["router_lines"] and not r["failures"]
        if r["stored"] != r["router_lines"]:
            print(f"gunicorn's log ended:\n{r['log_tail']}", file=sys.stderr)
        print(
            f"| {asked} | {r['all_lines_per_s']:,.0f} | {r['router_lines_per_s']:,.0f} "
            f"| {r['posts']:,} | {r['commits_per_min']:,.0f} | {r['rows_per_min']:,.0f} "
            f"| {r['lines_per_server_cpu_s']:,.0f} "
            f"| {r['server_cpu']:.1f} / {r['database_cpu']:.1f} / {r['sender_cpu']:.1f} | {r['stored']:,} / {r['router_lines']:,} ({match}; {r['failures']} failed POSTs) |"
        )
    top = max(r["router_lines_per_s"] for r in results)
    print()
    print(
        f"Goal {'MET' if top >= GOAL_LINES_PER_SECOND else 'NOT MET'}: "
        f"{top:,.0f} router lines/s at best (goal {GOAL_LINES_PER_SECOND:,})."
    )
    if len(results) > 1:
        for key, name in (("commits_per_min", "commits/min"), ("rows_per_min", "rows/min")):
            print(flat_verdict(results, key, name))
    return 0 if ok else 1


def flat_verdict(results: list[dict[str, Any]], key: str, name: str) -> str:
    """Whether `key` (a per-minute write count) stayed flat from the slowest line rate
    measured to the fastest."""
    slow = min(results, key=lambda r: r["router_lines_per_s"])
    fast = max(results, key=lambda r: r["router_lines_per_s"])
    ratio = fast[key] / slow[key] if slow[key] else math.inf
    lines = fast["router_lines_per_s"] / slow["router_lines_per_s"]
    return (
        f"{name} flat {'MET' if ratio <= FLAT_RATIO else 'NOT MET'}: "
        f"{fast[key]:,.0f} at {fast['router_lines_per_s']:,.0f} router lines/s against "
        f"{slow[key]:,.0f} at {slow['router_lines_per_s']:,.0f}, {ratio:.2f}x for "
        f"{lines:.1f}x the lines (flat: at most {FLAT_RATIO}x)."
    )


if __name__ == "__main__":
    sys.exit(main())
