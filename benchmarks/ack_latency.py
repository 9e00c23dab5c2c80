"""Ack latency of `/deploy status APP` and `/deploy scale ...` under gunicorn, beside a bare
bolt app that only acks, plus command → final reply at the fake Slack.

Slack gives an app three seconds to answer a slash command, and users feel far less than
that, so the ack must not wait on anything deploybot does after it. This benchmark starts
deploybot exactly as Heroku does (the Procfile's `web:` line through `bash -c`, with the
dyno's environment contract pointing at in-process fakes of Heroku and Slack) and
`benchmarks/bare_app.py`: Flask + slack_bolt whose `/deploy` listener only calls
`ack("ok")`. Signed slash commands then arrive from 1, 10 and 50 concurrent keep-alive
clients; the ack latency is the time until the HTTP response to the POST arrives.

How it is made fair:
- Both apps run from the same command line: the Procfile's `web:` line, with only the
  WSGI app's name swapped, so both read `bot/web/gunicorn_conf.py` (same worker class,
  threads, WEB_CONCURRENCY, preload setting) and the same environment contract.
- Both are given a PostgreSQL database (a fresh schema each in --database-url, default
  TEST_DATABASE_URL): ours stores audit rows there, the bare app connects to it at start.
  Ours' holds a fresh worker heartbeat before each of its turns (`worker_ticks`), as with
  a worker dyno running: otherwise every `scale` reply would take the worker-down path.
- Both apps use `process_before_response=True`: the ack runs on the request's thread.
  (Bolt's default polls for the ack with 10 ms sleeps, which would slow the baseline.)
- The two apps take turns (bare, ours, ours, bare, ... at each level) so that neither
  gains from the machine warming up, and after each turn of ours the benchmark waits until
  every command has its final answer at the fake `response_url`, so that deploybot's
  background work never lands on the bare app's turn.
- The fakes of Heroku and Slack run in a process of their own, as the real services are
  remote; the load clients are in this process. That process runs at nice +10
  (`--fakes-nice`): only ours makes the fakes work (three API calls and a post per
  command), and at an even share their CPU, which is Heroku's and Slack's in production,
  would be charged to our acks on this 2-CPU machine. Both apps run unniced, alike, and
  in the benchmark's own session, so that those priorities hold (see `Server.start`).

An ack that says "busy" (ours: its bounded background runner was full) is counted apart and
fails the goal: it is cheap and would flatter ours. Command → final reply is the time from
sending the POST to the fake Slack receiving the first post to its `response_url`.

Goal: ours p99 <= 1.3 x bare p99 at every concurrency, for each command. Missing it is
reported, not an error: the exit status is 0 unless the benchmark itself could not run.

Two options say where ours' time goes beside the bare app:
- `--work-baseline` times a third app, in the same turns and from the same Procfile line: a
  plain bolt app that does the command's Heroku calls and answers `response_url` in a lazy
  listener, as bolt's documentation says to (`bare_app.create_working_app`). The bare app
  does none of the work ours must do; this one does the same work the plain way.
- `--idle-burner` keeps one process spinning at SCHED_IDLE through every turn: on a 2-vCPU
  machine even that doubles an app's one-client p99, as ours' own jobs do to ours.

    .venv/bin/python benchmarks/ack_latency.py [--commands status,scale]
        [--requests-scale 0.5] [--database-url postgresql://...] [--work-baseline]
        [--idle-burner] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests

from bot.actions.background import BUSY
from bot.sandbox.fakes.dyno import FakeEndpoints, web_dyno_env
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.slack import FakeSlack
from bot.sandbox.slack_requests import sign, slash_command

ROOT = Path(__file__).resolve().parent.parent
OUR_APP = "'bot.web.app:create_app()'"
BARE_APP = "'benchmarks.bare_app:create_app()'"
WORKING_APP = "'benchmarks.bare_app:create_working_app()'"
GOAL = 1.3
SIGNING_SECRET = "bench-signing-secret"
HEROKU_KEY = "bench-heroku-key"
ADMIN = "UBENCHADM1"
USER = "UBENCHUSR1"
APP = "demo"
BUSY_WORDS = BUSY.split(".")[0]
DEFAULT_LEVELS = (1, 10, 50)
# Per app per round. A p99 from a few hundred acks moved by 2x between runs of the same
# code at one client (its fourth-slowest ack decides it); from 2,000 per level (two
# rounds) it held within 1.84-2.21x in three runs.
DEFAULT_REQUESTS = {1: 1000, 10: 1000, 50: 2000}
WARMUP_PER_CLIENT = 3  # per client thread, before the clock starts: opens its connection
WARMUP_PER_SERVER = 60  # once per server, at concurrency 4: every worker and thread wakes up
REQUEST_TIMEOUT = 10.0
# Heroku and Slack are remote in production; here the fakes yield the CPUs to the apps timed.
FAKES_NICE = 10
DRAIN_STALL = 15.0  # give up waiting for lazy answers after this long without progress
# Settings that change gunicorn's behaviour; passed through to both apps alike if set.
PASSTHROUGH = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "HOME", "LANG", "LC_ALL", "TMPDIR")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The two servers.


def procfile_web_line() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("the Procfile has no web: line")


def bare_web_line(app: str = BARE_APP) -> str:
    """The Procfile's web line with a baseline app in place of ours: identical settings."""
    line = procfile_web_line()
    if OUR_APP not in line:
        raise SystemExit(f"the Procfile's web line does not name {OUR_APP}: {line}")
    return line.replace(OUR_APP, app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One gunicorn, in a process group of its own so that killpg takes all its workers
    (and in this process's session: see `start`)."""

    name: str
    command: str
    env: dict[str, str]
    log_path: Path
    base: str = ""
    process: subprocess.Popen[bytes] | None = None
    _log: TextIO | None = None

    def start(self, timeout: float = 60.0) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            ["bash", "-c", self.command],
            env={**self.env, "PORT": str(port)},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # A process group of its own (stopped with killpg), in this session rather than
            # a session of its own. With Linux's sched_autogroup (on in this sandbox VM) CPU
            # is shared evenly between sessions first and nice counts only within one: in
            # a session of its own, ours' gunicorn competed as a group with the session of
            # the clients and the fakes, so the fakes' work for ours (Heroku's CPU in
            # production) took a full share from ours' acks, nice +10 notwithstanding. A
            # dyno's processes share one session, and containers skip autogroup anyway.
            process_group=0,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not healthy within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def cpu_seconds(self) -> float:
        """CPU time used so far by the live processes of this gunicorn's group (Linux)."""
        if self.process is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid:  # the process group id
                    total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
        return total / os.sysconf("SC_CLK_TCK")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def dyno_env(path: str, database_url: str, fakes: FakeEndpoints) -> dict[str, str]:
    """The environment contract of a web dyno, and nothing else of this process's."""
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    contract = web_dyno_env(
        database_url=database_url,
        fakes=fakes,
        heroku_key=HEROKU_KEY,
        signing_secret=SIGNING_SECRET,
        admin=ADMIN,
    )
    return {**env, **contract, "PATH": path}


# ---------------------------------------------------------------------------------------------
# The fakes, in a process of their own.


class Fakes:
    """Fake Heroku and Slack served by a child process, driven over a pipe.

    They stand in for services that are remote in production. In this process their request
    threads (schema validation, JSON) would hold the GIL the load clients time acks with,
    and charge deploybot's lazy work to its ack latency; the bare app makes no such calls.
    Only the main thread talks to the pipe.
    """

    def __init__(self, nice: int = 0) -> None:
        context = multiprocessing.get_context("spawn")  # no forking a process with threads
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_fakes, args=(child, nice), daemon=True)
        self.endpoints: FakeEndpoints | None = None

    def __enter__(self) -> Fakes:
        self._process.start()
        self.endpoints = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._ask("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def _ask(self, *message: Any) -> Any:
        self._conn.send(message)
        return self._conn.recv()

    def response_urls(self, n: int) -> list[str]:
        return self._ask("urls", n)

    def lazy_answers(self) -> int:
        return self._ask("answers")

    def violations(self) -> dict[str, int]:
        return self._ask("violations")

    def reply_times(self, urls: list[str]) -> dict[str, float]:
        """When the first answer to each of `urls` arrived (time.time() in the fakes)."""
        return self._ask("times", urls)


class TimedSlack(FakeSlack):
    """The fake Slack, noting when each response_url first gets an answer."""

    def __init__(self) -> None:
        super().__init__()
        self.first_answer: dict[str, float] = {}

    def _response_url(self, request: Any, url_id: str) -> Any:
        arrived = time.time()
        response = super()._response_url(request, url_id)
        self.first_answer.setdefault(url_id, arrived)
        return response


def _serve_fakes(conn: Any, nice: int) -> None:
    # Heroku's and Slack's work runs on their machines in production. Here it shares this
    # machine's two CPUs with the apps timed, and only ours makes it work (three API calls
    # and a post per command; the bare app calls nothing), so unniced it would charge
    # Heroku's CPU to our acks. Below the apps, the fakes take what CPU the acks leave.
    os.nice(nice)
    heroku = FakeHeroku(api_keys=(HEROKU_KEY,))
    heroku.add_app(APP, formation={"web": (1, "standard-1x")})
    # The benchmark measures acks, not Heroku's hourly budget of 4500 calls.
    heroku.rate_limit_remaining = 10**9
    with heroku, TimedSlack() as slack:
        conn.send(FakeEndpoints.of(heroku, slack))
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:
                return
            if command == "urls":
                conn.send([slack.new_response_url() for _ in range(args[0])])
            elif command == "answers":
                conn.send(len(slack.responses))
            elif command == "times":
                ids = {url: url.rsplit("/", 1)[1] for url in args[0]}
                first = slack.first_answer
                conn.send({url: first[i] for url, i in ids.items() if i in first})
            elif command == "violations":
                conn.send({"slack": len(slack.violations), "heroku": len(heroku.violations)})
            else:
                conn.send(None)
                return


# ---------------------------------------------------------------------------------------------
# Load.


@dataclass
class Sample:
    """What one turn of one app at one concurrency measured."""

    latencies: list[float] = field(default_factory=list)  # seconds, successful acks only
    errors: list[str] = field(default_factory=list)
    busy: int = 0  # acks that said "busy, try again" (ours only): not in latencies
    sent_at: dict[str, float] = field(default_factory=dict)  # response_url: time.time() sent
    replies: list[float] = field(default_factory=list)  # seconds from sending to the answer
    wall: float = 0.0
    truncated: bool = False
    server_cpu: float = 0.0  # seconds of CPU the app's gunicorn used during the turn
    bench_cpu: float = 0.0  # and this process: the load clients (the fakes have their own)


@dataclass
class Target:
    """An app under load: where it listens and what a correct ack from it looks like."""

    name: str
    server: Server
    looks_right: Callable[[requests.Response], bool]
    says_busy: Callable[[requests.Response], bool] = lambda response: False
    answers_later: bool = True  # each command owes an answer at the fake response_url
    sent: int = 0  # successful slash commands, warm-ups included


def run_turn(
    target: Target,
    text: Callable[[int], str],
    concurrency: int,
    count: int,
    fakes: Fakes,
    deadline: float,
    warmup_per_client: int = WARMUP_PER_CLIENT,
) -> Sample:
    """`count` signed `/deploy text(i)` from `concurrency` keep-alive clients."""
    url = f"{target.server.base}/slack/events"
    response_urls = iter(fakes.response_urls(count + concurrency * (warmup_per_client + 1)))
    sample = Sample()
    lock = threading.Lock()
    tickets = itertools.count()
    numbers = itertools.count()
    barrier = threading.Barrier(concurrency + 1)

    def one(session: requests.Session, timed: bool = False) -> float | None:
        with lock:
            response_url = next(response_urls)
            i = next(numbers)
        body = slash_command(text(i), response_url, user_id=ADMIN)
        headers = sign(SIGNING_SECRET, body)
        sent = time.time()
        started = time.perf_counter()
        try:
            response = session.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT)
            elapsed = time.perf_counter() - started
        except requests.RequestException as error:
            with lock:
                sample.errors.append(type(error).__name__)
            return None
        if response.status_code == 200 and target.says_busy(response):
            with lock:
                sample.busy += 1
            return None
        if response.status_code != 200 or not target.looks_right(response):
            with lock:
                sample.errors.append(f"HTTP {response.status_code}: {response.text[:80]!r}")
            return None
        with lock:
            target.sent += 1
            if timed:
                sample.sent_at[response_url] = sent
        return elapsed

    def client() -> None:
        with requests.Session() as session:
            for _ in range(warmup_per_client):
                one(session)
            try:
                barrier.wait(timeout=120)
                barrier.wait(timeout=120)
            except threading.BrokenBarrierError:
                return
            while next(tickets) < count:
                if time.monotonic() > deadline:
                    sample.truncated = True
                    return
                elapsed = one(session, timed=True)
                if elapsed is not None:
                    with lock:
                        sample.latencies.append(elapsed)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=120)  # every client has warmed up; CPU is counted from here
    cpu_before = (target.server.cpu_seconds(), time.process_time())
    barrier.wait(timeout=120)  # and the clock starts
    started = time.perf_counter()
    for thread in threads:
        while thread.is_alive():  # a timed join keeps Ctrl-C responsive
            thread.join(timeout=0.5)
    sample.wall = time.perf_counter() - started
    sample.server_cpu = target.server.cpu_seconds() - cpu_before[0]
    sample.bench_cpu = time.process_time() - cpu_before[1]
    return sample


@contextlib.contextmanager
def idle_burner() -> Any:
    """A process spinning at SCHED_IDLE, the lowest priority Linux has, while the block runs:
    what any CPU work elsewhere on the machine does to an app's ack tail."""
    process = multiprocessing.get_context("spawn").Process(target=_burn, daemon=True)
    process.start()
    try:
        yield
    finally:
        process.kill()
        process.join()


def _burn() -> None:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    while True:
        pass


def owed(targets: dict[str, Target]) -> int:
    """How many answers the fake Slack should hold once every app has done its work."""
    return sum(target.sent for target in targets.values() if target.answers_later)


def drain(fakes: Fakes, expected: int, deadline: float) -> float:
    """Wait until the fake Slack holds `expected` lazy answers; return the seconds waited."""
    started = time.monotonic()
    seen, last_progress = -1, started
    while time.monotonic() < deadline:
        got = fakes.lazy_answers()
        if got >= expected:
            break
        if got != seen:
            seen, last_progress = got, time.monotonic()
        elif time.monotonic() - last_progress > DRAIN_STALL:
            log(f"  lazy answers stalled at {got}/{expected}; carrying on")
            break
        time.sleep(0.05)
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# Results.


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Level:
    command: str
    concurrency: int
    requests: int
    samples: dict[str, list[Sample]] = field(
        default_factory=lambda: {"bare": [], "ours": [], "work": []}
    )
    drain_seconds: float = 0.0

    def merged(self, name: str) -> list[float]:
        return [x for sample in self.samples[name] for x in sample.latencies]

    def stats(self, name: str) -> dict[str, Any]:
        latencies = self.merged(name)
        samples = self.samples[name]
        replies = [x for sample in samples for x in sample.replies]
        wall = sum(sample.wall for sample in samples)
        return {
            "n": len(latencies),
            "errors": sum(len(sample.errors) for sample in samples),
            "busy": sum(sample.busy for sample in samples),
            "error_kinds": sorted({e for sample in samples for e in sample.errors})[:5],
            "p50_ms": percentile(latencies, 50) * 1000,
            "p90_ms": percentile(latencies, 90) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "max_ms": max(latencies, default=math.nan) * 1000,
            "reply_n": len(replies),
            "reply_p50_ms": percentile(replies, 50) * 1000,
            "reply_p99_ms": percentile(replies, 99) * 1000,
            "throughput_rps": len(latencies) / wall if wall else math.nan,
            "server_cpu_ms_per_request": _per_request(samples, "server_cpu"),
            "bench_cpu_ms_per_request": _per_request(samples, "bench_cpu"),
            "turn_p99_ms": [percentile(sample.latencies, 99) * 1000 for sample in samples],
        }

    def result(self) -> dict[str, Any]:
        bare, ours, work = self.stats("bare"), self.stats("ours"), self.stats("work")
        ratio = ours["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else math.nan
        return {
            "work": work,
            "work_ratio": ours["p99_ms"] / work["p99_ms"] if work["n"] else math.nan,
            "command": self.command,
            "concurrency": self.concurrency,
            "requests_per_app": self.requests,
            "bare": bare,
            "ours": ours,
            "p99_ratio": ratio,
            "goal_met": bool(ratio <= GOAL and not ours["errors"] and not ours["busy"]),
            "truncated": any(s.truncated for group in self.samples.values() for s in group),
            "lazy_drain_seconds": self.drain_seconds,
        }


def _per_request(samples: list[Sample], attribute: str) -> float:
    count = sum(len(sample.latencies) + len(sample.errors) + sample.busy for sample in samples)
    spent = sum(getattr(sample, attribute) for sample in samples)
    return spent / count * 1000 if count else math.nan


def table(results: list[dict[str, Any]]) -> str:
    with_work = any(r["work"]["n"] for r in results)
    extra = " bolt+work p99 | bolt+work reply p99 | ours ÷ bolt+work p99 |" if with_work else ""
    rows = [
        "| command | concurrency | bare p50 | bare p99 | ours p50 | ours p99 | p99 ratio "
        f"| ours reply p50 | ours reply p99 |{extra} goal met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * 3 * with_work + ":---|",
    ]
    for r in results:
        bare, ours = r["bare"], r["ours"]
        met = "yes" if r["goal_met"] else "**no**"
        if ours["errors"] or bare["errors"]:
            met += f" ({bare['errors']} bare / {ours['errors']} ours errors)"
        if ours["busy"]:
            met += f" ({ours['busy']} busy acks)"
        if ours["reply_n"] < ours["n"]:
            met += f" ({ours['n'] - ours['reply_n']} replies missing)"
        if r["truncated"]:
            met += " (time limit: partial)"
        rows.append(
            f"| {r['command']} | {r['concurrency']} | {bare['p50_ms']:.1f} ms "
            f"| {bare['p99_ms']:.1f} ms | {ours['p50_ms']:.1f} ms | {ours['p99_ms']:.1f} ms "
            f"| {r['p99_ratio']:.2f}x | {ours['reply_p50_ms']:.0f} ms "
            f"| {ours['reply_p99_ms']:.0f} ms |{_work_cells(r) if with_work else ''} {met} |"
        )
    return "\n".join(rows)


def _work_cells(result: dict[str, Any]) -> str:
    work = result["work"]
    return (
        f" {work['p99_ms']:.1f} ms | {work['reply_p99_ms']:.0f} ms | {result['work_ratio']:.2f}x |"
    )


def verdict(results: list[dict[str, Any]]) -> str:
    missed = [r for r in results if not r["goal_met"]]
    if not missed:
        worst = max(r["p99_ratio"] for r in results)
        return f"Goal MET: ours p99 <= {GOAL}x bare p99 everywhere (worst {worst:.2f}x)."
    where = ", ".join(
        f"{r['command']} at {r['concurrency']} ({r['p99_ratio']:.2f}x)" for r in missed
    )
    return f"Goal NOT MET: ours p99 > {GOAL}x bare p99 (or busy/errors) for {where}."


# ---------------------------------------------------------------------------------------------
# Databases.

COMMANDS: dict[str, Callable[[int], str]] = {
    "status": lambda i: f"status {APP}",
    # A real change each time: 1, 2, 3, 1, ... dynos (concurrent ones may find it done).
    "scale": lambda i: f"scale web={i % 3 + 1} {APP}",
}


@contextlib.contextmanager
def postgres_schemas(base_url: str, names: list[str]) -> Any:
    """A fresh schema per name on the server of `base_url`; yields their URLs; drops them."""
    from sqlalchemy import create_engine, text

    from bot.store.db import normalize_url

    suffix = os.urandom(4).hex()
    schemas = {name: f"bench_{name}_{suffix}" for name in names}
    admin = create_engine(normalize_url(base_url))
    separator = "&" if "?" in base_url else "?"
    try:
        with admin.begin() as connection:
            for schema in schemas.values():
                connection.execute(text(f"CREATE SCHEMA {schema}"))
        yield {
            name: f"{base_url}{separator}options=-csearch_path%3D{schema}"
            for name, schema in schemas.items()
        }
    finally:
        with admin.begin() as connection:
            for schema in schemas.values():
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def migrate(url: str) -> None:
    from bot.store.db import Database

    database = Database(url)
    try:
        database.migrate()
    finally:
        database.dispose()


def worker_ticks(url: str) -> None:
    """A fresh heartbeat of a leading worker in ours' database, as a running worker dyno
    keeps one. Without it every change's reply takes the worker-down path (a warning line,
    and a claim to tell the admins once), which a healthy deployment never runs."""
    from datetime import UTC, datetime

    from bot.store.db import Database
    from bot.store.heartbeats import Heartbeats

    database = Database(url)
    try:
        now = datetime.now(UTC)
        Heartbeats(database).beat("benchmark", leader=True, now=now, release=None, started_at=now)
    finally:
        database.dispose()


# ---------------------------------------------------------------------------------------------
# Main.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--requests-scale",
        type=float,
        default=1.0,
        help="multiply the requests per level (1: 1000, 10: 1000, 50: 2000 per app per round)",
    )
    parser.add_argument(
        "--concurrency",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        default=DEFAULT_LEVELS,
        help="comma-separated client counts (default 1,10,50)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="turns per app per level, alternating bare/ours then ours/bare (default 2)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=600.0, help="hard limit in seconds (default 600)"
    )
    parser.add_argument(
        "--commands",
        type=lambda text: tuple(text.split(",")),
        default=tuple(COMMANDS),
        help="comma-separated commands to send (default status,scale)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL") or os.environ.get("BENCH_DATABASE_URL"),
        help="a PostgreSQL server to make the two apps' schemas in (default TEST_DATABASE_URL)",
    )
    parser.add_argument(
        "--fakes-nice",
        type=int,
        default=FAKES_NICE,
        help=f"the fakes' process's nice value (default {FAKES_NICE}; 0 shares the CPUs evenly)",
    )
    parser.add_argument(
        "--idle-burner",
        action="store_true",
        help="keep one CPU-bound process at SCHED_IDLE running through every turn of every app",
    )
    parser.add_argument(
        "--work-baseline",
        action="store_true",
        help="also time a plain bolt app that does the same Heroku calls in a lazy listener",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--keep-logs", action="store_true", help="print where the gunicorn logs are and keep them"
    )
    args = parser.parse_args(argv)
    if args.requests_scale <= 0 or args.rounds < 1 or min(args.concurrency) < 1:
        parser.error("--requests-scale, --rounds and --concurrency must be positive")
    if not set(args.commands) <= set(COMMANDS):
        parser.error(f"--commands: choose from {', '.join(COMMANDS)}")
    if not (args.database_url or "").startswith(("postgres://", "postgresql://")):
        parser.error("--database-url (or TEST_DATABASE_URL) must name a PostgreSQL server")
    return args


def requests_for(concurrency: int, scale: float) -> int:
    default = DEFAULT_REQUESTS.get(concurrency, min(2000, max(200, 20 * concurrency)))
    return max(concurrency, round(default * scale))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.time_limit

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so the finally blocks below kill the gunicorns

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    temp = Path(tempfile.mkdtemp(prefix="deploybot-bench-"))

    with contextlib.ExitStack() as stack:
        if args.keep_logs:
            stack.callback(log, f"gunicorn logs kept in {temp}")
        else:  # runs last, after the servers have stopped, even on Ctrl-C
            stack.callback(shutil.rmtree, temp, ignore_errors=True)
        fakes = stack.enter_context(Fakes(args.fakes_nice))
        if args.idle_burner:
            stack.enter_context(idle_burner())
        assert fakes.endpoints is not None
        names = ["bare", "ours", "work"] if args.work_baseline else ["bare", "ours"]
        urls = stack.enter_context(postgres_schemas(args.database_url, names))
        migrate(urls["ours"])  # the release phase's job on Heroku

        ours = Server(
            "deploybot",
            procfile_web_line(),
            dyno_env(path, urls["ours"], fakes.endpoints),
            temp / "deploybot.log",
        )
        bare = Server(
            "bare bolt app",
            bare_web_line(),
            dyno_env(path, urls["bare"], fakes.endpoints),
            temp / "bare.log",
        )
        targets = {
            "bare": Target("bare", bare, lambda r: r.text == "ok", answers_later=False),
            "ours": Target(
                "ours", ours, lambda r: "Working on" in r.text, lambda r: BUSY_WORDS in r.text
            ),
        }
        if args.work_baseline:
            work = Server(
                "bolt app doing the work",
                bare_web_line(WORKING_APP),
                dyno_env(path, urls["work"], fakes.endpoints),
                temp / "work.log",
            )
            targets["work"] = Target("work", work, lambda r: r.text == "ok")
        for server in (target.server for target in targets.values()):
            stack.callback(server.stop)
            log(f"starting {server.name}: {server.command}")
            server.start()

        results: list[dict[str, Any]] = []
        try:
            worker_ticks(urls["ours"])
            for target in targets.values():  # imports, connection pools, every worker
                for text in (COMMANDS[name] for name in args.commands):
                    run_turn(target, text, 4, WARMUP_PER_SERVER, fakes, deadline, 1)
            drain(fakes, owed(targets), deadline)

            for command, concurrency in itertools.product(args.commands, args.concurrency):
                if time.monotonic() > deadline:
                    log("time limit reached: stopping early")
                    break
                total = requests_for(concurrency, args.requests_scale)
                per_turn = math.ceil(total / args.rounds)
                level = Level(command, concurrency, per_turn * args.rounds)
                log(f"{command} at concurrency {concurrency}: {level.requests} requests per app")
                for turn in range(args.rounds):
                    order = list(targets) if turn % 2 == 0 else list(reversed(targets))
                    for name in order:
                        target = targets[name]
                        if name == "ours":
                            worker_ticks(urls["ours"])  # stale after 2 minutes
                        sample = run_turn(
                            target, COMMANDS[command], concurrency, per_turn, fakes, deadline
                        )
                        level.samples[name].append(sample)
                        log(
                            f"  {name:4}: p50 {percentile(sample.latencies, 50) * 1000:6.1f} ms"
                            f"  p99 {percentile(sample.latencies, 99) * 1000:6.1f} ms"
                            f"  {len(sample.latencies) / sample.wall:6.0f} req/s"
                            f"  errors {len(sample.errors)}  busy {sample.busy}"
                            f"  cpu/req: gunicorn {sample.server_cpu / per_turn * 1000:4.1f} ms,"
                            f" bench {sample.bench_cpu / per_turn * 1000:4.1f} ms"
                        )
                        if target.answers_later:
                            # Its work after the acks must not run on another app's turn.
                            waited = drain(fakes, owed(targets), deadline)
                            level.drain_seconds += waited
                            answered = fakes.reply_times(list(sample.sent_at))
                            sample.replies = [
                                answered[url] - sent
                                for url, sent in sample.sent_at.items()
                                if url in answered
                            ]
                            log(
                                f"        answers drained {waited:.1f} s after the turn;"
                                f" reply p50 {percentile(sample.replies, 50) * 1000:.0f} ms"
                                f" p99 {percentile(sample.replies, 99) * 1000:.0f} ms"
                            )
                results.append(level.result())
        except KeyboardInterrupt:
            log("interrupted: stopping the servers")
            return 130

        ours_log = ours.log_text()
        violations = fakes.violations()
        problems = {
            "tracebacks": ours_log.count("Traceback"),
            "error_lines": sum("at=error" in line for line in ours_log.splitlines()),
            "slack_violations": violations["slack"],
            "heroku_violations": violations["heroku"],
            "lazy_answers": fakes.lazy_answers(),
            "commands_sent_to_ours": targets["ours"].sent,
        }

    output = {
        "goal": f"ours p99 <= {GOAL} x bare p99 at every concurrency, for every command",
        "goal_met": all(r["goal_met"] for r in results) and bool(results),
        "levels": results,
        "settings": {
            "web": procfile_web_line(),
            "bare": bare_web_line(),
            "database": "PostgreSQL, one schema per app",
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2 (gunicorn_conf default)"),
            "GUNICORN_THREADS": os.environ.get("GUNICORN_THREADS", "4 (gunicorn_conf default)"),
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
        },
        "ours_health": problems,
    }
    if args.json:
        print(json.dumps(output, indent=2))
    else:
        print(f"Goal: ours p99 <= {GOAL} x bare p99 at every concurrency, for every command.")
        print(f"Both: {procfile_web_line()} (app name swapped for the bare one); PostgreSQL.\n")
        print(table(results))
        print()
        if any(problems[key] for key in ("tracebacks", "slack_violations", "heroku_violations")):
            print(f"deploybot health during the run: {problems}")
        print(verdict(results) if results else "No results: nothing was measured.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
