"""The bot's own health: the worker's heartbeat, `/deploy about`, `/healthz?deep=1`, and
the worker-down line on replies that change something (with one post to the admins)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.metrics.aggregate import Window
from bot.store.db import Database
from bot.store.drains import Drains
from bot.store.heartbeats import Heartbeats
from bot.store.incidents import Alerts
from tests.conftest import ADMIN, USER
from tests.test_worker import wait_for, worker
from tests.webclient import SlackDriver

ADMIN_CHANNEL = "C0ADMINS"
WARNING = "The worker is not running: autoscaling and alerts are paused."


@pytest.fixture
def web(new_app, config):
    app = new_app(replace(config, admin_channel=ADMIN_CHANNEL))
    yield app
    app.extensions["deploybot"].db.dispose()  # its pool's connections, now


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def beat(web, at: datetime, name: str = "worker.1") -> None:
    services = web.extensions["deploybot"]
    Heartbeats(services.db).beat(name, True, at, "v42", at - timedelta(hours=1))


def test_about_shows_the_release_the_worker_the_backlog_and_the_drains(driver, web, monkeypatch):
    services = web.extensions["deploybot"]
    services.health.release = "v42 (abc1234)"
    now = datetime.now(UTC)
    services.health.now = lambda: now  # the web dyno's clock, held still
    beat(web, now - timedelta(seconds=30))
    Drains(services.db).get_or_create("myapp", "https://bot.example", ADMIN, now)
    Alerts(services.db).outbox.enqueue("k", "C1", "post", "hello", now)
    _, url = driver.command("about", USER)
    text = driver.reply(url)["text"]
    assert "release `v42 (abc1234)`" in text
    assert "Worker: last tick 30s ago, leader `worker.1`" in text
    assert "Alert outbox: 1 message(s) waiting" in text
    # "last traffic nothing yet" read awkwardly.
    assert "Drain `myapp`: no traffic yet" in text


def test_about_takes_no_window_dated_in_the_future_for_the_drains_last_traffic(driver, web):
    services = web.extensions["deploybot"]
    now = datetime.now(UTC)
    services.health.now = lambda: now
    Drains(services.db).get_or_create("myapp", "https://bot.example", ADMIN, now)
    # A line stamped 2099 (anyone holding the drain's URL may post one) had read as
    # "last traffic 0s ago" until then, however long the drain stayed silent.
    services.metrics.save([Window("myapp", 4_070_908_800, requests=1)])
    _, url = driver.command("about", USER)
    assert "Drain `myapp`: no traffic yet" in driver.reply(url)["text"]


def test_a_fleets_drains_are_counted_and_only_the_quiet_ones_named():
    from bot.actions.results import About
    from handlers.render import about_lines

    now = datetime.now(UTC)
    drains = tuple(
        (f"app-{i:04d}", None if i % 250 == 0 else now - timedelta(seconds=20)) for i in range(1000)
    )
    lines = about_lines(About(release=None, beat=None, worker_down=True, outbox_backlog=0,
                              drains=drains, now=now))  # fmt: skip
    # A line per drain had filled App Home's header, cut mid-line.
    assert len(lines) == 4 and len("\n".join(lines)) < 500
    assert lines[-1] == (
        "Drains: 1,000 apps, 996 with traffic in the last 10 minutes; quiet: `app-0000` "
        "(no traffic yet), `app-0250` (no traffic yet), `app-0500` (no traffic yet), `app-0750` "
        "(no traffic yet)"
    )


def test_about_says_when_the_worker_never_ticked(driver):
    _, url = driver.command("about", USER)
    assert "The worker has never ticked" in driver.reply(url)["text"]


def test_about_without_a_release_says_how_to_show_it(driver):
    # A Heroku dyno without runtime-dyno-metadata has no HEROKU_RELEASE_VERSION either: it
    # was told "not on Heroku", on Heroku, with no word of the setting the README names.
    _, url = driver.command("about", USER)
    text = driver.reply(url)["text"]
    assert "not on Heroku" not in text
    assert (
        "release unknown (on Heroku, `heroku labs:enable runtime-dyno-metadata` shows it)" in text
    )


def test_healthz_stays_about_the_web_dyno_and_deep_adds_the_worker(driver, web):
    assert driver.client.get("/healthz").json == {"ok": True, "database": "ok"}
    deep = driver.client.get("/healthz?deep=1")
    assert deep.status_code == 503 and deep.json["worker"]["lag_seconds"] is None
    now = datetime.now(UTC)
    web.extensions["deploybot"].health.now = lambda: now  # held still: no wall clock
    beat(web, now - timedelta(seconds=5))
    deep = driver.client.get("/healthz?deep=1")
    assert deep.status_code == 200
    assert deep.json["worker"] == {"ok": True, "lag_seconds": 5.0, "trouble": None}
    # The leader's process name is not the internet's to read (it had been shown).
    assert "worker.1" not in deep.get_data(as_text=True)


def test_changes_say_the_worker_is_down_and_the_admins_hear_it_once(driver, web, slack):
    beat(web, datetime.now(UTC) - timedelta(minutes=3))
    for quantity in (2, 3):
        _, url = driver.command(f"scale web={quantity} myapp", ADMIN)
        reply = driver.reply(url)
        assert f"web {quantity - 1} → {quantity}" in reply["text"]
        assert WARNING in reply["text"]
        assert reply["blocks"][-1]["type"] == "context"
    [post] = slack.wait_for_calls("chat.postMessage")
    assert post.args["channel"] == ADMIN_CHANNEL
    assert "last ticked at" in post.args["text"]
    _, url = driver.command("status myapp", USER)  # reads never carry the line
    assert WARNING not in driver.reply(url)["text"]
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_ticking_worker_adds_no_line(driver, web, slack):
    beat(web, datetime.now(UTC) - timedelta(seconds=10))
    _, url = driver.command("scale web=2 myapp", ADMIN)
    assert WARNING not in driver.reply(url)["text"]
    assert slack.calls_to("chat.postMessage") == []


@pytest.mark.slow
def test_stopping_the_worker_process_brings_the_warning(driver, web, slack, database_url, tmp_path):
    services = web.extensions["deploybot"]
    env = {"DEPLOYBOT_HEARTBEAT_SECONDS": "0.5", "DYNO": "worker.1", "HEROKU_RELEASE_VERSION": "v7"}
    with worker(database_url, tmp_path / "w.log", **env) as process:
        wait_for(lambda: services.health.beat() is not None)
        _, url = driver.command("scale web=2 myapp", ADMIN)
        assert WARNING not in driver.reply(url)["text"]
        os.killpg(process.pid, signal.SIGKILL)  # a crash: no goodbye, no last beat
        process.wait(timeout=30)
    last = services.health.beat()
    assert last is not None and last.worker == "worker.1" and last.release == "v7"
    # Two minutes later, on the web dyno's clock (moved, not waited for).
    services.health.now = lambda: last.ticked_at + timedelta(minutes=2, seconds=1)
    _, url = driver.command("scale web=3 myapp", ADMIN)
    assert WARNING in driver.reply(url)["text"]
    [post] = slack.wait_for_calls("chat.postMessage")
    assert post.args["channel"] == ADMIN_CHANNEL


def test_the_heartbeat_store_keeps_one_row_per_worker(database_url):
    db = Database(database_url)
    beats = Heartbeats(db)
    start = datetime(2026, 11, 30, 12, tzinfo=UTC)
    beats.beat("worker.1", True, start, None, start)
    beats.beat("worker.1", True, start + timedelta(seconds=15), None, start)
    beats.beat("worker.2", False, start + timedelta(seconds=20), None, start)
    latest = beats.latest()
    assert latest is not None and latest.worker == "worker.1"
    assert latest.ticked_at == start + timedelta(seconds=15)
    db.dispose()


def test_one_query_says_when_each_apps_newest_traffic_began_and_ended(database_url):
    # `about` (when a drain last delivered) and the stale-metrics detector (when the newest
    # window ended) had each their own copy of this query.
    from bot.metrics.aggregate import WINDOW_SECONDS
    from bot.metrics.store import MetricsStore

    db = Database(database_url)
    try:
        now = datetime(2026, 11, 30, 12, tzinfo=UTC)
        start = int(now.timestamp()) - 600
        MetricsStore(db).save(
            [
                Window("myapp", start - 60, requests=1),
                Window("myapp", start, requests=1),
                Window("myapp", 4_070_908_800, requests=1),  # stamped 2099: no news
            ]
        )
        began = datetime.fromtimestamp(start, UTC)
        assert Heartbeats(db).newest_traffic(["myapp", "quiet"], now) == {
            "myapp": (began, began + timedelta(seconds=WINDOW_SECONDS))
        }
        assert Heartbeats(db).newest_traffic([], now) == {}
    finally:
        db.dispose()


def test_drains_all_hidden_by_the_rules_are_not_called_none_yet():
    from bot.actions.results import About
    from handlers.render import about_lines

    about = About(release=None, beat=None, worker_down=True, outbox_backlog=0, drains=(),
                  now=datetime.now(UTC), hidden=2)  # fmt: skip
    # "Drains: none yet (`/deploy drain APP` adds one)" would ask for drains that are there.
    assert about_lines(about)[-1] == "Drains: none you may see (the access rules keep 2 from you)"


def test_a_channel_refusing_alerts_and_the_digest_counts_both():
    from bot.store.heartbeats import Undelivered
    from handlers.render import undelivered_line

    since = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    line = undelivered_line(Undelivered("C0MYAPP", "is_archived", 3, since, digests=1))
    assert line.startswith(
        ":warning: Alerts and the daily digest to <#C0MYAPP> not delivered "
        f"(3 alerts, 1 digest since <!date^{int(since.timestamp())}^{{date_short_pretty}} "
        "{time}|2026-12-01 09:00 UTC>): Slack said `is_archived`: that channel is archived"
    )


def test_the_admins_worker_down_post_waits_out_slacks_retry_after(driver, web, slack):
    """Slack's 429 on the worker-down post had given its claim back: the next change's reply
    posted again at once, whatever `Retry-After` asked. It waits in the pause the worker's
    own admin post keeps (`slack:admin`), so the two dynos keep one."""
    from bot.slack_api import ADMIN_PAUSE
    from bot.store.throttles import Throttles

    beat(web, datetime.now(UTC) - timedelta(minutes=3))
    slack.fail_next("chat.postMessage", count=1, status=429, retry_after=1)
    _, url = driver.command("scale web=2 myapp", ADMIN)
    assert WARNING in driver.reply(url)["text"]  # the user's answer all the same
    assert slack.faults_served == [("chat.postMessage", 429)]
    _, url = driver.command("scale web=3 myapp", ADMIN)  # within Retry-After: not asked
    assert WARNING in driver.reply(url)["text"]
    assert slack.calls_to("chat.postMessage") == []
    throttles = Throttles(web.extensions["deploybot"].db)
    assert throttles.until(ADMIN_PAUSE, datetime.now(UTC)) is not None
    time.sleep(1.2)
    _, url = driver.command("scale web=4 myapp", ADMIN)
    driver.reply(url)
    [post] = slack.wait_for_calls("chat.postMessage")
    assert post.args["channel"] == ADMIN_CHANNEL


def test_the_worker_down_post_is_held_by_the_workers_admin_pause(driver, web, slack):
    from bot.slack_api import ADMIN_PAUSE
    from bot.store.throttles import Throttles

    now = datetime.now(UTC)
    beat(web, now - timedelta(minutes=3))
    # The worker's trouble post met a 429 just before it stopped.
    Throttles(web.extensions["deploybot"].db).throttle(ADMIN_PAUSE, now + timedelta(minutes=1), now)
    _, url = driver.command("scale web=2 myapp", ADMIN)
    assert WARNING in driver.reply(url)["text"]
    assert slack.calls_to("chat.postMessage") == []


def test_a_worker_down_post_slack_never_answered_costs_no_reply(driver, web, slack, monkeypatch):
    # No answer from Slack for the admins' post (a refused connection, a timeout) had gone
    # up through the reply: the change was made and its asker heard nothing.
    from urllib.error import URLError

    from bot.slack_api import PooledWebClient

    posted = PooledWebClient.chat_postMessage

    def post(self, *, channel, **rest):  # type: ignore[no-untyped-def]
        if channel == ADMIN_CHANNEL:
            raise URLError("Connection refused")
        return posted(self, channel=channel, **rest)

    monkeypatch.setattr(PooledWebClient, "chat_postMessage", post)
    beat(web, datetime.now(UTC) - timedelta(minutes=3))
    _, url = driver.command("scale web=2 myapp", ADMIN)
    reply = driver.reply(url)
    assert "web 1 → 2" in reply["text"] and WARNING in reply["text"]
    monkeypatch.setattr(PooledWebClient, "chat_postMessage", posted)
    _, url = driver.command("scale web=3 myapp", ADMIN)  # its claim was given back
    driver.reply(url)
    [post] = slack.wait_for_calls("chat.postMessage")
    assert post.args["channel"] == ADMIN_CHANNEL


def test_a_database_failing_at_the_admins_post_costs_no_reply(driver, web, slack, monkeypatch):
    # The worker-down post's claim is the web dyno's own bookkeeping: a database that
    # failed just there (a failover) had gone up through the reply of a change already made.
    from sqlalchemy.exc import OperationalError

    from bot.store.request_keys import RequestKeys

    claimed = RequestKeys.claim

    def claim(self, key, now):  # type: ignore[no-untyped-def]
        if key.startswith("worker-down:"):
            raise OperationalError("INSERT INTO request_keys", {}, Exception("server closed"))
        return claimed(self, key, now)

    beat(web, datetime.now(UTC) - timedelta(minutes=3))
    monkeypatch.setattr(RequestKeys, "claim", claim)
    _, url = driver.command("scale web=2 myapp", ADMIN)
    reply = driver.reply(url)
    assert "web 1 → 2" in reply["text"] and WARNING in reply["text"]
    assert slack.calls_to("chat.postMessage") == []
