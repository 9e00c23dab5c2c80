"""A bot token Slack refuses (rotated, revoked) holds the alert outbox; it loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.actions.results import About
from bot.slack_api import web_client
from bot.store.db import Database
from bot.store.heartbeats import Heartbeats
from bot.store.outbox import Outbox
from bot.worker.outbox_sender import OutboxSender
from handlers.render import about_lines

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def test_alerts_queued_while_slack_refuses_the_token_go_out_once_it_is_fixed(database_url, slack):
    db = Database(database_url)
    try:
        outbox = Outbox(db)
        for app, channel in (("a", "C1"), ("b", "C2"), ("c", "C3")):
            outbox.enqueue(f"crash:{app}:web", channel, "post", f"{app} crashed", T0)
        # The token was rotated in Slack before the config var: Slack says invalid_auth.
        # Each alert had been marked failed at once, and `about` had blamed each channel.
        stale = web_client("xoxb-rotated-away", slack.api_url, timeout=5)
        report = OutboxSender(db, stale).send_due(T0)
        assert (report.sent, report.failed) == (0, 0)
        assert len(slack.calls_to("chat.postMessage")) == 1  # one try holds them all
        heartbeats = Heartbeats(db)
        assert heartbeats.undelivered(T0) == []
        waiting, held_by = heartbeats.outbox_backlog()
        assert (waiting, held_by) == (3, "invalid_auth")
        about = About(
            release=None,
            beat=None,
            worker_down=False,
            outbox_backlog=waiting,
            drains=(),
            now=T0,
            outbox_stalled=held_by,
        )
        assert (
            ":warning: Alert outbox: 3 message(s) waiting: Slack refuses the bot's token; set "
            "`SLACK_BOT_TOKEN` to the app's current Bot User OAuth Token, and they go out "
            "(`invalid_auth`)"
        ) in about_lines(about)
        # The config var is fixed a few minutes later (the worker restarts with it).
        fixed = web_client(slack.bot_token, slack.api_url, timeout=5)
        later = OutboxSender(db, fixed).send_due(T0 + timedelta(minutes=5))
        assert later.sent == 3
        assert [e.state for e in outbox.entries()] == ["sent"] * 3
    finally:
        db.dispose()


def test_a_token_refused_for_over_a_day_gives_its_alerts_up(database_url, slack):
    db = Database(database_url)
    try:
        outbox = Outbox(db)
        outbox.enqueue("crash:a:web", "C1", "post", "a crashed", T0)
        stale = web_client("xoxb-rotated-away", slack.api_url, timeout=5)
        OutboxSender(db, stale).send_due(T0)
        report = OutboxSender(db, stale).send_due(T0 + timedelta(days=1, minutes=1))
        assert report.failed == 1
        [entry] = outbox.entries()
        assert (entry.state, entry.last_error) == ("failed", "gave up: invalid_auth")
    finally:
        db.dispose()
