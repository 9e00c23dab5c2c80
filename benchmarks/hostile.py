"""The hostile-input suite: the web dyno as Heroku starts it (the Procfile's `web:` line,
under gunicorn, one worker, access log on), against the fakes of Heroku and Slack, attacked
from outside. It prints the figures `docs/security.md` quotes:

- forged or replayed requests accepted: forged Slack requests (unsigned, wrong secret,
  stale, malformed timestamps), forged drain posts and webhooks answered 2xx, plus replays
  acted on more than once (a signed `scale` sent 10 times, a captured crash webhook sent
  10 times under new `Heroku-Webhook-Id`s, a drain batch sent twice);
- 5xx answers to any input (all of the above, signed but malformed payloads, 300 signed
  payloads of random shape, hostile drain frames, bodies past the ceiling);
- the serving worker's memory growth from one unsigned 64 MB POST (Content-Length) and one
  chunked 64 MB POST (no length): its peak RSS during the POST (VmHWM, reset through
  /proc/PID/clear_refs before) minus its RSS before;
- secrets found in the server's log, in Slack messages and in audit rows: the signing
  secret, the Heroku key, the bot token, drain tokens and the webhook secret, searched as
  plain text (a drain refusal that quotes the drain URL is provoked on purpose).

    .venv/bin/python -m benchmarks.hostile [--post-mb 64] [--json]

Exit status 0 when every figure meets its goal (0, 0, <= the POST's size, 0), else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from benchmarks.ack_latency import Server, procfile_web_line
from bot.sandbox.fakes.dyno import FakeEndpoints, web_dyno_env
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.slack import FakeSlack
from bot.sandbox.slack_requests import sign, slash_command
from bot.store.audit import AuditLog
from bot.store.db import Database
from bot.store.drains import Drains
from bot.store.incidents import Alerts
from bot.store.webhook_secrets import WebhookSecrets
from policies.heroku_webhooks import sign as sign_webhook

SIGNING_SECRET = "hostile-signing-secret-0123456789"
HEROKU_KEY = "hostile-heroku-key-0123456789"
WEBHOOK_SECRET = "hostile-webhook-secret-0123456789"
ADMIN = "UHOSTADM1"
APP = "myapp"
PUBLIC_URL = "https://deploybot.invalid"


@dataclass
class Figures:
    requests_sent: int
    forged_or_replayed_accepted: int
    answers_5xx: int
    memory_growth_mb: float  # Content-Length POST
    memory_growth_chunked_mb: float  # chunked POST
    post_mb: int
    secrets_in_logs: int
    secrets_in_slack_and_audit: int
    tracebacks_in_logs: int
    drain_refusal_quoted: bool  # Heroku's refusal quoting the drain URL reached the user
    statuses: dict[str, int]

    def ok(self) -> bool:
        return (
            self.forged_or_replayed_accepted == 0
            and self.answers_5xx == 0
            and max(self.memory_growth_mb, self.memory_growth_chunked_mb) <= self.post_mb
            and self.secrets_in_logs == 0
            and self.secrets_in_slack_and_audit == 0
            and self.drain_refusal_quoted
        )


class Attacker:
    """Sends requests to the server and keeps count of what came back."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.trust_env = False
        self.statuses: Counter[int] = Counter()
        self.forged_accepted = 0

    def send(self, path: str, body: Any, headers: dict[str, str], forged: bool = False) -> int:
        try:
            response = self.session.post(
                f"{self.base}{path}", data=body, headers=headers, timeout=60
            )
            status = response.status_code
        except requests.ConnectionError:
            status = 0  # the server closed a connection it would not read (too big): no answer
        self.statuses[status] += 1
        if forged and 200 <= status < 300:
            self.forged_accepted += 1
        return status

    def slack(self, body: str | bytes, headers: dict[str, str], forged: bool = False) -> int:
        return self.send("/slack/events", body, headers, forged)


def run(post_mb: int = 64) -> Figures:
    temp = Path(tempfile.mkdtemp(prefix="deploybot-hostile-"))
    database_url = f"sqlite:///{temp / 'deploybot.sqlite3'}"
    database = Database(database_url)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, temp, ignore_errors=True)
        stack.callback(database.dispose)
        database.migrate()
        now = datetime.now(UTC)
        drain = Drains(database).get_or_create(APP, "https://bot.example.com", ADMIN, now)
        # The drain `drain other` asks Heroku for, which Heroku refuses quoting its URL.
        refused = Drains(database).get_or_create("other", PUBLIC_URL, ADMIN, now)
        WebhookSecrets(database).save(APP, WEBHOOK_SECRET, "https://bot.example.com/w", ADMIN, now)
        heroku = stack.enter_context(FakeHeroku(api_keys=(HEROKU_KEY,)))
        heroku.add_app(APP, formation={"web": (1, "standard-1x")})
        heroku.add_app("other", formation={"web": (1, "standard-1x")})
        quoted = {"id": "invalid_params", "message": f"Url {refused.url} is not a valid drain URL."}
        heroku.fail_next(422, methods=["POST"], body=quoted, path="/apps/other/log-drains")
        slack = stack.enter_context(FakeSlack())
        env = {
            **web_dyno_env(
                database_url=database_url,
                fakes=FakeEndpoints.of(heroku, slack),
                heroku_key=HEROKU_KEY,
                signing_secret=SIGNING_SECRET,
                admin=ADMIN,
            ),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "DEPLOYBOT_URL": PUBLIC_URL,
            "WEB_CONCURRENCY": "1",  # one serving process, whose memory is measured
            "GUNICORN_CMD_ARGS": "--access-logfile -",  # request lines must be redacted too
        }
        server = Server("deploybot", procfile_web_line(), env, temp / "web.log")
        stack.callback(server.stop)
        server.start()
        attacker = Attacker(server.base)
        worker = _worker_pid(server)
        growth = _memory(attacker, worker, post_mb, chunked=False)
        growth_chunked = _memory(attacker, worker, post_mb, chunked=True)
        replays = _slack(attacker, slack, heroku)
        replays += _webhooks(attacker, database)
        replays += _drains(attacker, drain.token)
        refusal_seen = _drain_refusal(attacker, slack)
        time.sleep(1.0)  # the background pool finishes its answers
        server.stop()
        log = server.log_text()
        secrets = [SIGNING_SECRET, HEROKU_KEY, WEBHOOK_SECRET, slack.bot_token, drain.token]
        secrets.append(refused.token)
        shown = json.dumps([r.payload for r in slack.responses])
        shown += json.dumps([c.args for c in slack.calls])
        shown += json.dumps([vars(e) for e in AuditLog(database).recent(limit=None)], default=str)
        return Figures(
            requests_sent=sum(attacker.statuses.values()),
            forged_or_replayed_accepted=attacker.forged_accepted + replays,
            answers_5xx=sum(n for status, n in attacker.statuses.items() if status >= 500),
            memory_growth_mb=round(growth, 1),
            memory_growth_chunked_mb=round(growth_chunked, 1),
            post_mb=post_mb,
            secrets_in_logs=sum(log.count(secret) for secret in secrets),
            secrets_in_slack_and_audit=sum(shown.count(secret) for secret in secrets),
            tracebacks_in_logs=log.count("Traceback"),
            drain_refusal_quoted=refusal_seen,
            statuses={str(k): v for k, v in sorted(attacker.statuses.items())},
        )
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Memory.


def _worker_pid(server: Server) -> int:
    """The gunicorn worker serving requests (`bash -c` may exec gunicorn or fork it)."""
    assert server.process is not None
    pid = server.process.pid
    while kids := _children(pid):
        if len(kids) == 1 and _children(kids[0]):
            pid = kids[0]  # bash forked the master: go one level down
            continue
        return kids[0]
    raise RuntimeError("no gunicorn worker found")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def _memory(attacker: Attacker, pid: int, megabytes: int, chunked: bool) -> float:
    """MB the worker's peak RSS rose above its RSS before, while one unsigned POST of
    `megabytes` went to /slack/events."""
    attacker.send("/slack/events", b"warm-up", {})
    before = _status_kb(pid, "VmRSS")
    peak = [before]
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    stop = threading.Event()

    def sample() -> None:  # in case clear_refs is not allowed here: poll the RSS too
        while not stop.wait(0.005):
            with contextlib.suppress(OSError, RuntimeError):
                peak.append(_status_kb(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    chunk = b"x" * (1 << 20)
    body: Any = (chunk for _ in range(megabytes)) if chunked else chunk * megabytes
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    attacker.send("/slack/events", body, headers, forged=True)
    del body
    stop.set()
    sampler.join()
    peak.append(_status_kb(pid, "VmHWM"))
    return (max(peak) - before) / 1024


# ---------------------------------------------------------------------------------------------
# Slack.


def _signed(body: str | bytes, timestamp: str | None = None) -> dict[str, str]:
    raw = body.encode() if isinstance(body, str) else body
    timestamp = timestamp or str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + raw
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _form(payload: Any) -> str:
    return urlencode({"payload": json.dumps(payload)})


def _slack(attacker: Attacker, slack: FakeSlack, heroku: FakeHeroku) -> int:
    """Forged, replayed and malformed Slack requests; returns replays acted on twice."""
    kill = slash_command(f"kill {APP}", slack.new_response_url(), user_id=ADMIN)
    now = int(time.time())
    forged_headers = [
        {},
        {"Content-Type": "application/json"},
        sign("not-the-secret", kill),
        _signed(kill, str(now - 600)),  # a captured request replayed 10 minutes later
        _signed(kill, str(now + 600)),
        {**_signed(kill), "X-Slack-Request-Timestamp": "\xb2"},
        {**_signed(kill), "X-Slack-Request-Timestamp": "1" * 5000},
        {**_signed(kill), "X-Slack-Signature": "v0=" + "0" * 64},
        {**_signed(kill), "X-Slack-Signature": "v0=\xb2"},
    ]
    for headers in forged_headers:
        attacker.slack(kill, headers, forged=True)
    for junk in ("{not json", "payload=%7Bnot-json", "[1,2]", "[" * 100_000, "\x00\xff"):
        attacker.slack(junk, {"Content-Type": "application/json"}, forged=True)
    # Signed but malformed, and 300 signed payloads of random shape.
    rng = random.Random(15)
    for payload in _malformed() + _random_payloads(300):
        body = json.dumps(payload) if rng.random() < 0.3 else _form(payload)
        attacker.slack(body, _signed(body))
    # Signed commands with numbers int() refuses (5,000 digits, '²').
    for text in (f"scale web={'9' * 5000} {APP}", "history \xb2", f"metrics {APP} {'9' * 5000}m"):
        body = slash_command(text, slack.new_response_url(), user_id=ADMIN)
        attacker.slack(body, _signed(body))
    # A signed scale replayed 10 times within Slack's window: one change.
    before = len([r for r in heroku.requests if r.method == "PATCH"])
    scale = slash_command(f"scale web=2 {APP}", slack.new_response_url(), user_id=ADMIN)
    headers = _signed(scale)
    for _ in range(10):
        attacker.slack(scale, headers)
    time.sleep(2.0)
    patches = len([r for r in heroku.requests if r.method == "PATCH"]) - before
    return max(0, patches - 1)


def _malformed() -> list[Any]:
    actions = [{"action_id": "deploybot_confirm", "value": "1"}]
    return [
        [1],
        "block_actions",
        {"type": "block_actions", "actions": "x", "user": {"id": ADMIN}},
        {"type": "block_actions", "actions": ["x"], "user": {"id": ADMIN}},
        {"type": "block_actions", "actions": [], "user": {"id": ADMIN}},
        {"type": "block_actions", "actions": actions, "user": ADMIN},
        {"type": "block_actions", "actions": actions},
        {"type": "block_actions", "actions": [{"action_id": "deploybot_confirm", "value": 7}]},
        {"type": "block_actions", "team": {"id": []}, "actions": actions, "user": {"id": "U"}},
        {"type": 5},
        {"type": "event_callback", "event": "x"},
        {"type": "view_submission", "view": "x"},
        {"type": "url_verification"},
    ]


_KEYS = [
    "type", "team", "user", "channel", "enterprise", "authorizations", "event", "actions",
    "view", "container", "message", "response_urls", "response_url", "trigger_id", "command",
    "text", "user_id", "team_id", "channel_id", "challenge", "id", "action_id", "value",
    "block_id", "tab", "is_ext_shared_channel", "state",
]  # fmt: skip
_WORDS = [
    "block_actions", "event_callback", "url_verification", "view_submission", "shortcut",
    "app_home_opened", "home", "deploybot_confirm", "deploybot_cancel",
    "deploybot_alert_restart", "deploybot_alert_ack", "/deploy", ADMIN, "T1",
]  # fmt: skip


def _random_payloads(n: int, seed: int = 15) -> list[Any]:
    rng = random.Random(seed)

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 2 or roll < 0.4:
            return rng.choice([None, True, 0, -1, 2.5, "", "x", *_WORDS])
        if roll < 0.6:
            return [value(depth + 1) for _ in range(rng.randint(0, 2))]
        return {rng.choice(_KEYS): value(depth + 1) for _ in range(rng.randint(0, 4))}

    return [
        {"type": rng.choice(_WORDS), **{rng.choice(_KEYS): value(0) for _ in range(6)}}
        for _ in range(n)
    ]


# ---------------------------------------------------------------------------------------------
# Webhooks and drains.


def _webhooks(attacker: Attacker, database: Database) -> int:
    """Forged and replayed webhooks; returns crash deliveries counted more than once."""
    stamp = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    crash = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "action": "update",
            "resource": "dyno",
            "created_at": stamp,
            "data": {"app": {"name": APP}, "name": "web.1", "type": "web", "state": "crashed"},
        }
    ).encode()
    stale = json.loads(crash)
    stale["id"] = str(uuid.uuid4())
    stale["created_at"] = f"{datetime.now(UTC) - timedelta(days=2):%Y-%m-%dT%H:%M:%SZ}"
    forged = [
        (crash, {}),
        (crash, {"Heroku-Webhook-Hmac-SHA256": sign_webhook("not-the-secret", crash)}),
        (crash.replace(b"web.1", b"web.2"), {"Heroku-Webhook-Hmac-SHA256": sign_webhook(WEBHOOK_SECRET, crash)}),
        (crash, {"Heroku-Webhook-Hmac-SHA256": "\xb2"}),
        (b"[" * 100_000, {}),
        (b"{not json", {}),
    ]  # fmt: skip
    for body, headers in forged:
        attacker.send("/webhooks/heroku", body, headers, forged=True)
    stale_body = json.dumps(stale).encode()
    attacker.send(
        "/webhooks/heroku",
        stale_body,
        {"Heroku-Webhook-Hmac-SHA256": sign_webhook(WEBHOOK_SECRET, stale_body)},
    )
    signature = sign_webhook(WEBHOOK_SECRET, crash)
    for _ in range(11):  # the delivery, then 10 replays under new header ids
        headers = {"Heroku-Webhook-Hmac-SHA256": signature, "Heroku-Webhook-Id": str(uuid.uuid4())}
        attacker.send("/webhooks/heroku", crash, headers)
    counted = sum(incident.count for incident in Alerts(database).incidents(APP))
    return max(0, counted - 1)


def _frame(message: str) -> str:
    return f"{len(message.encode()) + 1} {message}\n"


def _drains(attacker: Attacker, token: str) -> int:
    """Forged and hostile drain posts; nothing here is counted twice, so returns 0."""
    stamp = f"{datetime.now(UTC) - timedelta(seconds=30):%Y-%m-%dT%H:%M:%S+00:00}"
    router = (
        f"<158>1 {stamp} host heroku router - at=info method=GET path=/ host=h "
        "dyno=web.1 connect=1ms service=30ms status=200 bytes=1"
    )
    frames = [
        "1" * 5000 + " <158>1 x\n",
        _frame(router.replace(stamp, "0001-01-01T00:00:00+01:00")),
        _frame(router.replace(stamp, "9999-12-31T23:59:59-01:00")),
        _frame(router.replace("service=30ms", "service=" + "9" * 400 + "ms")),
        _frame(router),
    ]
    body = "".join(frames).encode()
    headers = {"Content-Type": "application/logplex-1", "Logplex-Frame-Id": "hostile-1"}
    # One character off: a token ending in "x" (1 in 64) must not be sent as itself.
    off_by_one = token[:-1] + ("y" if token.endswith("x") else "x")
    for fake in ("forged", off_by_one, ""):
        attacker.send(f"/drain/{fake}", body, headers, forged=True)
    for _ in range(2):
        attacker.send(f"/drain/{token}", body, headers)
    attacker.send(f"/drain/{token}", b"x" * (2 << 20), headers)  # past the ceiling: 413
    return 0


def _drain_refusal(attacker: Attacker, slack: FakeSlack) -> bool:
    """`/deploy drain other` with a URL Heroku refuses and quotes back; then the history.
    Whether the refusal was answered: without it, no quoted token was there to find."""
    # A new connection: the server closed the last one after the body past the ceiling,
    # and `drain other` sent on it had never arrived (status 0), so nothing was provoked.
    attacker.session.close()
    answers = []
    for text in ("drain other", "history other"):
        url = slack.new_response_url()
        body = slash_command(text, url, user_id=ADMIN)
        attacker.slack(body, _signed(body))
        with contextlib.suppress(Exception):
            answers += [r.get("text", "") for r in slack.wait_for_responses(url, n=1, timeout=15)]
    return any("is not a valid drain URL" in answer for answer in answers)


# ---------------------------------------------------------------------------------------------


def report(figures: Figures, command: str) -> Iterator[str]:
    yield f"$ {command}"
    yield f"requests sent: {figures.requests_sent} (answers by status: {figures.statuses})"
    yield f"forged or replayed requests accepted: {figures.forged_or_replayed_accepted}"
    yield f"5xx answers to any input: {figures.answers_5xx}"
    yield (
        f"serving-process memory growth from one unsigned {figures.post_mb} MB POST: "
        f"{figures.memory_growth_mb} MB (Content-Length), "
        f"{figures.memory_growth_chunked_mb} MB (chunked)"
    )
    yield f"secrets found in logs: {figures.secrets_in_logs}"
    yield f"secrets found in Slack messages or audit rows: {figures.secrets_in_slack_and_audit}"
    yield f"tracebacks in the server's log: {figures.tracebacks_in_logs}"
    yield f"Heroku's refusal quoting a drain URL provoked and answered: {figures.drain_refusal_quoted}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--post-mb", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = run(args.post_mb)
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    else:
        command = "python -m benchmarks.hostile" + (f" --post-mb {args.post_mb}" if argv else "")
        print("\n".join(report(figures, command)))
    return 0 if figures.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
