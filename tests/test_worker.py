"""The worker dyno from the Procfile line: one leader at a time, takeover when it dies,
and its jobs doing their work (expired prompts say so in Slack; web dynos scaled down and
up from router logs the gunicorn web dyno drained)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from benchmarks import procfile
from bot.metrics.aggregate import Window
from bot.metrics.store import MetricsStore
from bot.store.audit import Actor
from bot.store.autoscale_settings import AutoscaleStore, Settings
from bot.store.confirmations import Confirmations
from bot.store.db import Database
from bot.store.drains import Drains
from bot.store.incidents import Alerts
from policies.sketch import Sketch
from tests.conftest import HEROKU_KEY
from tests.test_drain import router_line
from tests.test_gunicorn import web_dyno
from tests.webclient import wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

FAST = {
    "DEPLOYBOT_EXPIRE_SECONDS": "0.5",
    "DEPLOYBOT_LEASE_RETRY_SECONDS": "0.5",
    "DEPLOYBOT_LEASE_CHECK_SECONDS": "0.5",
}


@contextlib.contextmanager
def worker(database_url: str, log_path: Path, **extra: str):
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        **FAST,
        **extra,
    }
    with procfile.process("worker", env, log_path) as process:
        yield process


def autoscaling_env(heroku, slack) -> dict[str, str]:
    """The fakes' endpoints, and an autoscale tick every half second."""
    return {
        "HEROKU_API_KEY": HEROKU_KEY,
        "HEROKU_API_URL": heroku.url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "DEPLOYBOT_AUTOSCALE_SECONDS": "0.5",
    }


def leads(path: Path) -> bool:
    return "worker is the leader" in path.read_text()


def test_one_leader_and_a_takeover_when_it_dies(database_url, tmp_path):
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with worker(database_url, first_log) as first:
        wait_for(lambda: leads(first_log))
        with worker(database_url, second_log):
            wait_for(lambda: "waiting for the lease" in second_log.read_text())
            time.sleep(2)
            assert not leads(second_log)  # the lease is held: the second one waits
            os.killpg(first.pid, signal.SIGKILL)  # the leader dies without letting go
            took = wait_for(lambda: leads(second_log))
            assert took < 30
    for path in (first_log, second_log):
        assert "Traceback" not in path.read_text(), path.read_text()


def test_an_unanswered_prompt_expires_and_its_message_says_so(database_url, tmp_path, slack):
    database = Database(database_url)
    url = slack.new_response_url()
    asked = datetime.now(UTC) - timedelta(minutes=11)
    actor = Actor("UADMIN01", channel_id="C1", reply_to=url)
    Confirmations(database).create(
        actor, "myapp", "kill myapp", {"web": [1, "basic"]}, {"web": [0, None]}, asked
    )
    database.dispose()
    with worker(database_url, tmp_path / "w.log"):
        [message] = slack.wait_for_responses(url, n=1, timeout=30)
    assert message["replace_original"] is True
    assert "request `kill myapp` expired at" in message["text"]


def test_a_prompt_slack_cannot_be_told_of_leaves_every_expiry_recorded(config, slack):
    from bot.store.audit import AuditLog
    from bot.worker.main import Worker

    database = Database(config.database_url)
    asked = datetime.now(UTC) - timedelta(minutes=11)
    urls = ["http://127.0.0.1:9/unreachable", slack.new_response_url(), slack.new_response_url()]
    for url in urls:
        actor = Actor("UADMIN01", channel_id="C1", reply_to=url)
        Confirmations(database).create(actor, "myapp", "kill myapp", {}, {}, asked)
    worker = Worker(config)
    try:
        # The first post cannot connect: the job had raised there, leaving two expired
        # prompts with no audit row and no message.
        assert worker.expire_prompts() == 3
        expired = AuditLog(database).recent("myapp", limit=None, outcomes=frozenset({"expired"}))
        assert len(expired) == 3
        for url in urls[1:]:
            [message] = slack.wait_for_responses(url, n=1, timeout=10)
            assert "request `kill myapp` expired at" in message["text"]
    finally:
        worker.db.dispose()
        database.dispose()


def test_a_worker_told_to_stop_mid_round_leaves_the_prompts_not_told_for_the_next_leader(
    config, slack, monkeypatch
):
    # SIGTERM at a deploy while a round of expired prompts goes out, each post up to 10 s:
    # the round went on into Heroku's SIGKILL, and the prompts it had already moved to
    # expired and not yet told Slack of kept their live Confirm buttons for good.
    from bot.store.audit import AuditLog
    from bot.worker.main import WebhookClient, Worker

    database = Database(config.database_url)
    asked = datetime.now(UTC) - timedelta(minutes=11)
    urls = [slack.new_response_url() for _ in range(3)]
    for url in urls:
        actor = Actor("UADMIN01", channel_id="C1", reply_to=url)
        Confirmations(database).create(actor, "myapp", "kill myapp", {}, {}, asked)
    old, new = Worker(config), Worker(config)
    send = WebhookClient.send

    def send_then_sigterm(self, *args, **kwargs):
        response = send(self, *args, **kwargs)
        old.stopping.set()  # the signal comes as the first expired prompt is told
        return response

    monkeypatch.setattr(WebhookClient, "send", send_then_sigterm)
    try:
        assert old.expire_prompts() == 1
        monkeypatch.setattr(WebhookClient, "send", send)
        assert new.expire_prompts() == 2  # the next leader tells the rest
        for url in urls:
            [message] = slack.wait_for_responses(url, n=1, timeout=10)
            assert "request `kill myapp` expired at" in message["text"]
        expired = AuditLog(database).recent("myapp", limit=None, outcomes=frozenset({"expired"}))
        assert len(expired) == 3
    finally:
        for worker in (old, new):
            worker.db.dispose()
        database.dispose()


def slow_traffic(database: Database, high: int, minutes: int = 7) -> None:
    """`myapp` autoscaled 1 to `high` on a 500 ms p95 target, and `minutes` of drained
    traffic served at 1.5 s from 6 minutes ago on, past now: every tick wants more dynos."""
    now = datetime.now(UTC)
    AutoscaleStore(database).save(
        Settings("myapp", "on", 1, high, "service_p95", 500.0, "UADMIN01", now)
    )
    start = int(now.timestamp()) // 60 * 60 - 6 * 60
    windows = []
    for second in range(start, start + minutes * 60, 10):
        sketch = Sketch()
        sketch.add(1500.0, 100)
        windows.append(
            Window(app="myapp", start=second, requests=100, dynos={"web.1": 100}, service=sketch)
        )
    MetricsStore(database).save(windows)


def test_the_worker_scales_an_app_from_drained_traffic_and_survives_a_restart(
    database_url, heroku, slack, tmp_path
):
    database = Database(database_url)
    slow_traffic(database, high=6)
    env = autoscaling_env(heroku, slack)
    # Dynos that boot at once let the first worker step up again at its next tick, from the
    # same slow windows, if it ticks before it is stopped: booting, they hold it, as on Heroku.
    heroku.boot_seconds = 60
    with worker(database_url, tmp_path / "a.log", **env):
        wait_for(lambda: heroku.formation("myapp")["web"][0] > 1)
    scaled_to = heroku.formation("myapp")["web"][0]
    decided = len(AutoscaleStore(database).decisions("myapp", limit=1000))
    # A new worker picks up from the database: it keeps deciding, and the boot cooldown it
    # reads back keeps it from stepping up again at once.
    with worker(database_url, tmp_path / "b.log", **env):
        wait_for(lambda: len(AutoscaleStore(database).decisions("myapp", limit=1000)) > decided + 2)
    assert heroku.formation("myapp")["web"][0] == scaled_to
    patches = [r for r in heroku.requests if r.method == "PATCH"]
    assert len(patches) == 1 and heroku.violations == []
    database.dispose()


def test_two_workers_with_the_leader_killed_midway_act_once(database_url, heroku, slack, tmp_path):
    """Without the lease both would see web=1 and both would scale: one PATCH proves one actor.
    On PostgreSQL (production's database) the pair runs for a minute, the leader killed
    halfway; on SQLite only as long as the takeover takes."""
    minute = database_url.startswith("postgresql")
    database = Database(database_url)
    slow_traffic(database, high=3, minutes=8)
    env = autoscaling_env(heroku, slack)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    began = time.monotonic()
    with worker(database_url, first_log, **env) as first:
        wait_for(lambda: leads(first_log))
        with worker(database_url, second_log, **env):
            wait_for(lambda: heroku.formation("myapp")["web"][0] == 3)
            if minute:
                time.sleep(max(0.0, 30 - (time.monotonic() - began)))
            os.killpg(first.pid, signal.SIGKILL)
            assert wait_for(lambda: leads(second_log)) < 30
            decided = len(AutoscaleStore(database).decisions("myapp", limit=1000))
            wait_for(
                lambda: len(AutoscaleStore(database).decisions("myapp", limit=1000)) > decided + 3
            )
            if minute:
                time.sleep(max(0.0, 60 - (time.monotonic() - began)))
    patches = [r for r in heroku.requests if r.method == "PATCH"]
    acted = [d for d in AutoscaleStore(database).decisions("myapp", limit=1000) if d.acted]
    # The kill may land between the PATCH and the leader recording its decision: then the
    # new leader reads web=3 and has nothing to do, so no decision says "acted". Either
    # way Heroku saw one scale.
    assert len(patches) == 1 and len(acted) <= 1
    assert heroku.formation("myapp")["web"][0] == 3
    database.dispose()


def test_both_dynos_from_the_procfile_scale_down_then_up_from_drained_traffic(
    database_url, heroku, slack, tmp_path
):
    """The web dyno (gunicorn) takes the router logs at /drain/TOKEN, the worker reads what
    it stored: quick responses bring web 4 down to the min, then slow ones bring it up."""
    heroku.add_app("busyapp", {"web": (4, "Standard-1X")})
    database = Database(database_url)
    now = datetime.now(UTC)
    token = Drains(database).get_or_create("busyapp", "https://bot.example", "UADMIN01", now).token
    AutoscaleStore(database).save(
        Settings("busyapp", "on", 1, 6, "service_p95", 500.0, "UADMIN01", now)
    )

    def drain(base: str, service_ms: int, n: int, batch: str) -> None:
        # Spread over the last two minutes, so the worker finds whole, fresh minutes.
        at = datetime.now(UTC).replace(microsecond=0)
        frames = [
            router_line(at - timedelta(seconds=100 - i * 90 // n), "web.1", service_ms, 200)
            for i in range(n)
        ]
        body = "".join(frames).replace("myapp.herokuapp.com", "busyapp.herokuapp.com")
        response = requests.post(
            f"{base}/drain/{token}",
            data=body.encode(),
            headers={
                "Content-Type": "application/logplex-1",
                "Logplex-Msg-Count": str(n),
                "Logplex-Frame-Id": batch,
            },
            timeout=10,
        )
        assert response.status_code == 204

    env = autoscaling_env(heroku, slack)
    metrics = MetricsStore(database)

    def stored() -> int:
        end = int(time.time()) + 60
        return sum(w.requests for w in metrics.windows("busyapp", end - 600, end))

    with web_dyno(database_url, heroku, slack, tmp_path, release=False) as base:
        drain(base, 40, 600, "quick")
        # The web dyno flushes every 5 s. Started before, the worker would find no metrics,
        # hold at 4 and, rightly, not scale down for the next 5 minutes.
        wait_for(lambda: stored() == 600)
        with worker(database_url, tmp_path / "worker.log", **env):
            wait_for(lambda: heroku.formation("busyapp")["web"][0] == 1)
            drain(base, 3000, 3000, "slow")  # the same minutes, now mostly slow
            wait_for(lambda: heroku.formation("busyapp")["web"][0] > 1)
    asked = [
        update["quantity"]
        for r in heroku.requests
        if r.method == "PATCH" and r.path == "/apps/busyapp/formation"
        for update in r.json["updates"]
    ]
    assert asked[:3] == [3, 2, 1] and asked[3] > 1, asked  # −1 a tick down, then up at once
    acted = [d for d in AutoscaleStore(database).decisions("busyapp", limit=100) if d.acted]
    assert len(acted) == len(asked)
    assert heroku.violations == []
    database.dispose()


def test_a_sigterm_mid_round_hands_the_outbox_over_at_once_and_sends_each_alert_once(
    database_url, heroku, slack, tmp_path
):
    """A deploy: Heroku sends the old worker SIGTERM while it sends a backlog to a slow
    Slack. It finishes the message in flight, lets go of the lease, and the new worker
    sends the rest, each once, in order. The old one had sent its whole round first (past
    Heroku's 30 s on a longer backlog, then killed mid-call, its row sent again later)."""
    database = Database(database_url)
    outbox = Alerts(database, blocks_for=lambda *_: []).outbox
    now = datetime.now(UTC)
    for n in range(60):
        outbox.enqueue("crash:myapp:web", "C1", "post", f"alert {n}", now)
    database.dispose()
    slack.latency = 0.3
    env = {**autoscaling_env(heroku, slack), "DEPLOYBOT_ALERTS_SECONDS": "0.5"}
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with worker(database_url, first_log, **env) as first:
        wait_for(lambda: leads(first_log))
        with worker(database_url, second_log, **env):
            wait_for(lambda: "waiting for the lease" in second_log.read_text())
            wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 3)
            os.killpg(first.pid, signal.SIGTERM)
            assert first.wait(timeout=30) == 0
            # It let go after the message in flight, not after its whole round of 60.
            assert len(slack.calls_to("chat.postMessage")) < 60
            wait_for(lambda: leads(second_log))
            wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 60, timeout=60)
            time.sleep(1)  # a second sending of any row would show by now
    texts = [call.args["text"] for call in slack.calls_to("chat.postMessage")]
    assert texts == [f"alert {n}" for n in range(60)]
