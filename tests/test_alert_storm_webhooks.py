"""A crash storm that arrives as webhooks, one crash per request, stays within the channel
limit: one summary a window, edited as more fold into it, then sent to Slack as such."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store.db import Database
from bot.store.incidents import Alerts
from bot.worker.outbox_sender import OutboxSender
from policies.incidents import Event

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def crash_each(alerts: Alerts, apps: range, start: datetime) -> None:
    for i in apps:
        now = start + timedelta(seconds=i % 20)
        event = Event(f"app{i:02}", "crash", "web", now, "web.1 crashed")
        alerts.record([event], now, lambda app: "CSHARED")


def test_a_crash_storm_arriving_one_webhook_at_a_time_stays_within_the_channel_limit(
    database_url, slack
):
    # Twenty apps share one channel; a bad shared add-on crashes them all within seconds.
    # Each webhook had posted a summary of one alert past the limit: twenty messages.
    from bot.slack_api import web_client

    db = Database(database_url)
    try:
        alerts = Alerts(db)
        crash_each(alerts, range(20), T0)
        rows = alerts.outbox.entries()
        posts = [e for e in rows if e.kind == "post"]
        assert len(posts) == 6  # Rules.channel_limit: five alerts, and one summary
        [summary] = [e for e in posts if e.incident_key.startswith("summary:")]
        # Queued edits of one message collapse into the newest, which names all fifteen.
        [edit] = [e for e in rows if e.incident_key == summary.incident_key and e.kind == "update"]
        assert edit.payload["text"].startswith(
            ":rotating_light: 15 more alerts in this channel just now: *app05* `web` dynos "
            "crashed, *app06* `web` dynos crashed,"
        )
        assert "*app19* `web` dynos crashed." in edit.payload["text"]
        # Slack gets six messages, and the summary is edited in place.
        client = web_client(slack.bot_token, slack.api_url, timeout=5)
        assert OutboxSender(db, client).send_due(T0 + timedelta(seconds=30)).sent == 7
        assert len(slack.calls_to("chat.postMessage")) == 6
        [update] = slack.calls_to("chat.update")
        assert "15 more alerts" in update.args["text"]
        # The next window's storm gets a summary of its own.
        crash_each(alerts, range(20, 27), T0 + timedelta(minutes=2))
        posts = [e for e in alerts.outbox.entries() if e.kind == "post"]
        assert len(posts) == 12
    finally:
        db.dispose()
