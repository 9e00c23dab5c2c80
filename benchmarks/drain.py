"""Drain throughput: how many Heroku log lines one core parses and aggregates per second.

A drain POST carries every request of every watched app, so the web dyno must keep up with
the busiest of them on a fraction of one core. This benchmark builds a seeded corpus of
logplex bodies (`make_corpus`: mostly router lines with realistic paths, statuses, a few
H12/H13/H27 errors, lognormal service times over web.1..web.N, plus app lines, some of them
HireFire `queue=` lines, runtime-metrics samples and dyno state changes), pins itself to one
CPU, and times, best of --repeat runs:

- ours: `policies.logplex.parse_body` + `bot.metrics.aggregate.Aggregator.ingest`, then
  `drain()` into windows;
- regex: a competent regex pipeline: one compiled frame pattern run with `finditer` over the
  whole body, timestamps converted once per second (a dict of seconds seen), and a router
  line's dyno, connect, service and status read by one pattern anchored on ` dyno=`
  (`re.findall` of every key=value only for lines that break that order), feeding the same
  RouterLine tuples into the same Aggregator;
- syslog-rfc5424-parser: the same, but the header parsed by that library (a lark grammar).
  Heroku omits STRUCTURED-DATA, which the library requires, so a `-` is inserted for it.
  Parse + the same aggregation, on a --syslog-lines subset (the library is slow).

Each pipeline's windows are asserted equal to ours, so all do the same work. Also printed:
the parse alone, and ours with its token memo tables emptied before each run (a cold web
dyno). Goal: ours >= 200,000 lines/s and ahead of (> 1.0 x) the competent regex pipeline.
Missing it is reported, not an error.

    .venv/bin/python benchmarks/drain.py [--lines 200000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.metrics.aggregate import Aggregator, Window
from policies import logplex
from policies.logplex import (
    ParsedBody,
    QueueSample,
    RouterLine,
    RuntimeSample,
    parse_body,
)

GOAL_LINES_PER_SECOND = 200_000
GOAL_RATIO = 1.0  # ahead of the competent regex pipeline
APP = "shop"
HOST = "shop.herokuapp.com"
START = 1_714_564_800  # 2024-05-01T12:00:00Z
LINES_PER_SECOND = 400  # the simulated app's log rate: 10 s windows of ~4,000 lines
BATCH = 250  # messages per POST (Logplex batches up to a few hundred)


# ---------------------------------------------------------------------------------------------
# The corpus.

_PATHS = (
    "/",
    "/healthz",
    "/api/orders/{id}",
    "/api/orders/{id}/items?page={n}",
    "/api/users/{id}/profile?include=teams,roles",
    "/api/search?q={word}&page={n}",
    "/assets/application-{hash}.js",
    "/assets/application-{hash}.css",
    "/webhooks/stripe",
    "/login",
)
_WORDS = ("shoes", "red+shirt", "gift", "sale", "jacket", "socks", "caf%C3%A9")
_STATUSES = (
    (200, 0.86),
    (201, 0.02),
    (204, 0.01),
    (301, 0.01),
    (302, 0.02),
    (304, 0.03),
    (400, 0.005),
    (401, 0.01),
    (403, 0.003),
    (404, 0.02),
    (422, 0.005),
    (500, 0.004),
    (502, 0.001),
    (503, 0.001),
)
_ERRORS = (  # (code, at, desc, status, sock, share of router lines)
    ("H12", "error", "Request timeout", 503, None, 0.003),
    ("H13", "error", "Connection closed without response", 503, None, 0.001),
    ("H27", "warning", "Client Request Interrupted", 499, "client", 0.002),
)
_APP_LINES = (
    '{ip} - - [01/May/2024:12:00:00 +0000] "GET /api/orders/{id} HTTP/1.1" 200 1234 "-" "Mozilla/5.0"',
    "Completed 200 OK in {ms}ms (Views: 3.1ms | ActiveRecord: 12.4ms | Allocations: 5012)",
    "INFO  [sidekiq] Enqueued OrderMailer job queue=default jid={hash}",
    "Processing by OrdersController#show as JSON",
)


def make_corpus(lines: int, seed: int = 5, dynos: int = 6) -> list[bytes]:
    """`lines` messages in logplex bodies of BATCH frames, reproducible from `seed`."""
    rng = random.Random(seed)
    statuses, weights = zip(*_STATUSES, strict=True)
    clock = float(START)
    frames: list[bytes] = []
    for _ in range(lines):
        clock += rng.expovariate(LINES_PER_SECOND)
        whole = int(clock)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        stamp += f".{int((clock - whole) * 1e6):06d}+00:00"
        dyno = f"web.{rng.randint(1, dynos)}"
        roll = rng.random()
        if roll < 0.80:
            pri, app, procid, text = (
                158,
                "heroku",
                "router",
                _router_text(rng, dyno, statuses, weights),
            )
        elif roll < 0.86:
            ms = rng.choice((0, 0, 1, 2, 3, 5, 8, 13, 40, 120))
            pri, app, procid, text = 190, "app", dyno, f"[hirefire:router] queue={ms}ms"
        elif roll < 0.97:
            pri, app, procid = 190, "app", dyno
            text = rng.choice(_APP_LINES).format(
                ip=_ip(rng), id=rng.randint(1, 99999), ms=rng.randint(3, 900), hash=_hex(rng, 12)
            )
        elif roll < 0.98:
            pri, app, procid, text = 134, "heroku", dyno, _runtime_text(rng, dyno)
        else:
            pri, app, procid = 45, "heroku", dyno
            text = rng.choice(
                ("State changed from starting to up", "Stopping all processes with SIGTERM")
            )
        message = f"<{pri}>1 {stamp} host {app} {procid} - {text}\n".encode()
        frames.append(b"%d %s" % (len(message), message))
    return [b"".join(frames[i : i + BATCH]) for i in range(0, len(frames), BATCH)]


def _router_text(
    rng: random.Random, dyno: str, statuses: Sequence[int], weights: Sequence[float]
) -> str:
    path = rng.choice(_PATHS).format(
        id=rng.randint(1, 99999), n=rng.randint(1, 9), word=rng.choice(_WORDS), hash=_hex(rng, 8)
    )
    method = "POST" if path.startswith("/webhooks") or path == "/login" else "GET"
    common = (
        f'method={method} path="{path}" host={HOST} request_id={uuid.UUID(int=rng.getrandbits(128))}'
        f' fwd="{_ip(rng)}" dyno={dyno}'
    )
    connect = rng.choice((0, 0, 0, 1, 1, 2))
    roll = rng.random()
    for code, at, desc, status, sock, share in _ERRORS:
        if roll < share:
            service = 30000 if code == "H12" else rng.randint(1, 29000)
            prefix = f"sock={sock} " if sock else ""
            return (
                f'{prefix}at={at} code={code} desc="{desc}" {common} connect={connect}ms'
                f" service={service}ms status={status} bytes=0 protocol=https"
            )
        roll -= share
    service = min(29999, int(rng.lognormvariate(math.log(45), 0.9)))
    status = rng.choices(statuses, weights)[0]
    size = 0 if status in (204, 304) else rng.randint(200, 60000)
    return (
        f"at=info {common} connect={connect}ms service={service}ms status={status}"
        f" bytes={size} protocol=https"
    )


def _runtime_text(rng: random.Random, dyno: str) -> str:
    head = f"source={dyno} dyno=heroku.145151706.{uuid.UUID(int=rng.getrandbits(128))}"
    if rng.random() < 0.5:
        load = rng.uniform(0, 2)
        return (
            f"{head} sample#load_avg_1m={load:.2f} sample#load_avg_5m={load * 0.9:.2f}"
            f" sample#load_avg_15m={load * 0.8:.2f}"
        )
    total = rng.uniform(120, 480)
    return (
        f"{head} sample#memory_total={total:.2f}MB sample#memory_rss={total * 0.9:.2f}MB"
        f" sample#memory_cache={total * 0.1:.2f}MB sample#memory_swap=0.00MB"
        f" sample#memory_pgpgin={rng.randint(10**5, 10**6)}pages"
        f" sample#memory_pgpgout={rng.randint(10**5, 10**6)}pages sample#memory_quota=512.00MB"
    )


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


# ---------------------------------------------------------------------------------------------
# The baselines: the same lines, read the way a competent regex parser would.

KEY_VALUE = re.compile(r'(\w+)=("[^"]*"|\S+)')
_UNITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# One pattern for a whole frame, run with finditer over the whole body: LEN, <PRI>1, the
# timestamp split at the second, host, app, procid, `-` for MSGID, then the message.
FRAME = re.compile(
    r"^(\d+) <\d{1,3}>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(\+00:00|Z)? \S+ (\S+) (\S+) - (.*)$",
    re.MULTILINE,
)
# A router line's numbers, anchored on ` dyno=`: they follow it in this order on every
# line Heroku's router writes; a line that breaks the order takes the general reader.
ROUTER = re.compile(r" dyno=(\S*) connect=(\d+)ms service=(\d+)ms status=(\d+)(?= |$)")
CODE = re.compile(r"\bcode=(H\d+)")
QUEUE = re.compile(r"\bqueue=(\d+(?:\.\d+)?)ms\b")


def regex_parse(body: bytes) -> ParsedBody:
    """The competent regex pipeline: one compiled pattern with finditer over the whole body,
    timestamps cached per second, router fields by one pattern anchored on ` dyno=`."""
    parsed = _Lines()
    seconds: dict[str, int] = {}
    requests = parsed.requests
    for match in FRAME.finditer(body.decode("utf-8", "replace")):
        _, stamp, fraction, zone, app, procid, message = match.groups()
        if zone is not None:  # UTC: one datetime per second of log, not one per line
            when = seconds.get(stamp)
            if when is None:
                when = seconds[stamp] = int(datetime.fromisoformat(stamp + "+00:00").timestamp())
        else:
            try:
                when = int(datetime.fromisoformat(stamp + (fraction or "")).timestamp())
            except ValueError:
                parsed.malformed += 1
                continue
        if procid == "router":
            router = ROUTER.search(message)
            if router is not None and '"' not in message[router.start() :]:
                dyno, connect, service, status = router.groups()
                code = CODE.search(message) if "code=" in message else None
                requests.append(
                    RouterLine(
                        when,
                        dyno or None,
                        int(status),
                        code.group(1) if code else None,
                        int(service),
                        int(connect),
                        message,
                    )
                )
                continue
        elif app == "app" and "source=" not in message:
            queue = QUEUE.search(message) if "queue=" in message else None
            if queue is None:
                parsed.other += 1
            else:
                parsed.queue.append(QueueSample(when, procid, float(queue.group(1))))
            continue
        _classify(parsed, when, app, procid, message)
    return parsed.done()


def syslog_parse(body: bytes) -> ParsedBody:
    """The same, with the header parsed by syslog-rfc5424-parser."""
    from syslog_rfc5424_parser import SyslogMessage
    from syslog_rfc5424_parser.message import ParseError

    parsed = _Lines()
    for frame in _frames(body, parsed):
        parts = frame.split(" ", 6)
        if len(parts) < 7:
            parsed.malformed += 1
            continue
        patched = " ".join(parts[:6]) + " - " + parts[6]  # the STRUCTURED-DATA Heroku omits
        try:
            message = SyslogMessage.parse(patched)
            when = int(datetime.fromisoformat(message.timestamp).timestamp())
        except (ParseError, ValueError):
            parsed.malformed += 1
            continue
        _classify(parsed, when, message.appname, message.procid or "-", message.msg or "")
    return parsed.done()


class _Lines:
    def __init__(self) -> None:
        self.requests: list[RouterLine] = []
        self.queue: list[QueueSample] = []
        self.runtime: list[RuntimeSample] = []
        self.other = self.malformed = 0

    def done(self) -> ParsedBody:
        return ParsedBody(self.requests, self.queue, self.runtime, self.other, self.malformed)


def _frames(body: bytes, parsed: _Lines) -> list[str]:
    frames, position, size = [], 0, len(body)
    while position < size:
        space = body.find(b" ", position)
        try:
            end = space + 1 + int(body[position:space])
        except ValueError:
            parsed.malformed += 1
            newline = body.find(b"\n", position)
            position = size if newline < 0 else newline + 1
            continue
        frames.append(body[space + 1 : end].decode("utf-8", "replace").rstrip("\n"))
        position = end
    return frames


def _classify(parsed: _Lines, when: int, app: str, procid: str, message: str) -> None:
    fields = {key: value.strip('"') for key, value in KEY_VALUE.findall(message)}
    if procid == "router":
        parsed.requests.append(
            RouterLine(
                when,
                fields.get("dyno") or None,
                _number(fields.get("status")),
                fields.get("code"),
                _number(fields.get("service")),
                _number(fields.get("connect")),
                message,
            )
        )
    elif app == "app" and fields.get("queue", "").endswith("ms"):
        parsed.queue.append(
            QueueSample(when, fields.get("source") or procid, float(fields["queue"][:-2]))
        )
    elif app == "heroku" and "source" in fields:
        samples = {
            key: float(value.rstrip(_UNITS))
            for key, value in fields.items()
            if key not in ("source", "dyno")
        }
        parsed.runtime.append(RuntimeSample(when, fields["source"], fields.get("dyno"), samples))
    else:
        parsed.other += 1


def _number(text: str | None) -> int | None:
    if not text:
        return None
    return int(text[:-2] if text.endswith("ms") else text)


# ---------------------------------------------------------------------------------------------
# Timing.


def aggregate_with(parse: Callable[[bytes], ParsedBody]) -> Callable[[list[bytes]], list[Window]]:
    def run(bodies: list[bytes]) -> list[Window]:
        aggregator = Aggregator()
        for body in bodies:
            aggregator.ingest(APP, parse(body))
        return aggregator.drain()

    return run


def parse_only(parse: Callable[[bytes], ParsedBody]) -> Callable[[list[bytes]], None]:
    def run(bodies: list[bytes]) -> None:
        for body in bodies:  # each result dropped, as after ingest: no pile-up for the GC
            parse(body)

    return run


def cold(run: Callable[[list[bytes]], Any]) -> Callable[[list[bytes]], Any]:
    """`run`, with the parser's token memo tables emptied first: a freshly started dyno."""

    def empty_then_run(bodies: list[bytes]) -> Any:
        for table in (logplex._DYNO, logplex._CONNECT, logplex._SERVICE, logplex._STATUS):
            table.clear()
        return run(bodies)

    return empty_then_run


def best_seconds(run: Callable[[list[bytes]], Any], bodies: list[bytes], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run(bodies)
        best = min(best, time.perf_counter() - started)
    return best


def pin_to_one_cpu() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no os.sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def count_lines(bodies: list[bytes]) -> int:
    return sum(parse_body(body).frames for body in bodies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=200_000, help="corpus size (200000)")
    parser.add_argument(
        "--syslog-lines", type=int, default=10_000, help="subset for syslog-rfc5424-parser"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per pipeline; best counts")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.lines < BATCH or args.repeat < 1 or args.syslog_lines < 0:
        parser.error("--lines must be at least one batch, --repeat at least 1")

    pinned = pin_to_one_cpu()
    bodies = make_corpus(args.lines, args.seed)
    lines = count_lines(bodies)
    subset = bodies[: max(1, args.syslog_lines // BATCH)] if args.syslog_lines else []
    subset_lines = count_lines(subset)

    ours_windows = aggregate_with(parse_body)(bodies)
    regex_windows = aggregate_with(regex_parse)(bodies)
    assert regex_windows == ours_windows, "the regex pipeline's windows differ from ours"
    assert len(ours_windows) > 1 and sum(w.requests for w in ours_windows) > 0
    if subset and aggregate_with(syslog_parse)(subset) != aggregate_with(parse_body)(subset):
        raise SystemExit("the syslog-rfc5424-parser pipeline counted differently from ours")

    rows: list[dict[str, Any]] = []

    def time_it(name: str, run: Callable[[list[bytes]], Any], data: list[bytes], n: int) -> None:
        seconds = best_seconds(run, data, args.repeat)
        rows.append({"pipeline": name, "lines": n, "seconds": seconds, "lines_per_s": n / seconds})

    time_it("ours: parse + aggregate", aggregate_with(parse_body), bodies, lines)
    time_it("ours, cold memo: parse + aggregate", cold(aggregate_with(parse_body)), bodies, lines)
    time_it("regex: parse + aggregate", aggregate_with(regex_parse), bodies, lines)
    if subset:
        time_it(
            "syslog-rfc5424-parser: parse + aggregate",
            aggregate_with(syslog_parse),
            subset,
            subset_lines,
        )
    time_it("ours: parse only", parse_only(parse_body), bodies, lines)
    time_it("regex: parse only", parse_only(regex_parse), bodies, lines)

    ours = rows[0]["lines_per_s"]
    for row in rows:
        row["ours_ratio"] = ours / row["lines_per_s"]
    regex_ratio = next(r["ours_ratio"] for r in rows if r["pipeline"].startswith("regex: parse +"))
    met = ours >= GOAL_LINES_PER_SECOND and regex_ratio > GOAL_RATIO
    result = {
        "goal": f"ours >= {GOAL_LINES_PER_SECOND} lines/s and > {GOAL_RATIO}x the regex pipeline",
        "goal_met": met,
        "rows": rows,
        "settings": {
            "lines": lines,
            "bodies": len(bodies),
            "windows": len(ours_windows),
            "repeat": args.repeat,
            "cpu": pinned,
            "python": sys.version.split()[0],
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{lines} lines in {len(bodies)} bodies ({len(ours_windows)} windows), "
        f"best of {args.repeat}, {pinned}, Python {sys.version.split()[0]}\n"
    )
    print("| pipeline | lines | best s | lines/s | ours is |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['pipeline']} | {row['lines']} | {row['seconds']:.3f} "
            f"| {row['lines_per_s']:,.0f} | {row['ours_ratio']:.2f}x |"
        )
    print()
    verdict = "MET" if met else "NOT MET"
    print(
        f"Goal {verdict}: ours {ours:,.0f} lines/s (goal {GOAL_LINES_PER_SECOND:,}), "
        f"{regex_ratio:.2f}x the competent regex pipeline (goal > {GOAL_RATIO}x)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
