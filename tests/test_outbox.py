"""The alert outbox against the fake Slack over HTTP: while Slack answers 429 and 5xx, every
alert still arrives once, in order per incident; two senders never send one row twice."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import update

from bot.slack_api import MAX_PAUSE, web_client
from bot.store.db import Database
from bot.store.incidents import Alerts
from bot.store.models import AlertOutboxEntry, IncidentRow
from bot.store.outbox import Outbox
from bot.worker.outbox_sender import OutboxSender
from policies.incidents import Event, Rules

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def client(slack) -> WebClient:
    return web_client(slack.bot_token, slack.api_url, timeout=5)  # the bot's own client


def drain(sender: OutboxSender, outbox: Outbox, start: datetime, limit: int = 2000) -> datetime:
    """Call send_due on a simulated clock, one second a step, until nothing is pending."""
    now = start
    for _ in range(limit):
        sender.send_due(now)
        if all(entry.state in ("sent", "failed") for entry in outbox.entries()):
            return now
        now += SECOND
    raise AssertionError(f"still pending: {[(e.id, e.state) for e in outbox.entries()]}")


def ok_calls(slack, method: str | None = None):
    return [
        call
        for call in slack.calls
        if call.response.get("ok") and (method is None or call.method == method)
    ]


def test_every_alert_arrives_once_in_order_per_incident_while_slack_fails(db, slack, client):
    outbox = Outbox(db)
    plan = []
    for round_ in range(3):
        for incident in ("crash:a:web", "crash:b:web", "slow:c:web"):
            kind = ["post", "update", "reply"][round_]
            text = f"{incident} #{round_}"
            outbox.enqueue(incident, "C1", kind, text, T0)
            plan.append((incident, kind, text))
    slack.fail_next("chat.postMessage", count=3, status=429, retry_after=5)
    slack.fail_next("chat.postMessage", count=2, status=500)
    slack.fail_next("chat.update", count=2, status=503)
    slack.fail_next("chat.update", count=1, status=429, retry_after=2)

    drain(OutboxSender(db, client), outbox, T0)

    assert len(slack.faults_served) == 8
    delivered = ok_calls(slack)
    assert len(delivered) == len(plan)  # once each: nothing lost, nothing doubled
    assert sorted(call.args["text"] for call in delivered) == sorted(t for _, _, t in plan)
    for incident in ("crash:a:web", "crash:b:web", "slow:c:web"):
        mine = [call for call in delivered if call.args["text"].startswith(incident)]
        assert [call.args["text"] for call in mine] == [f"{incident} #{n}" for n in range(3)]
        post, edit, reply = mine
        assert post.method == "chat.postMessage" and "thread_ts" not in post.args
        assert edit.method == "chat.update" and edit.args["ts"] == post.response["ts"]
        assert reply.method == "chat.postMessage"
        assert reply.args["thread_ts"] == post.response["ts"]
    top_level = [m for m in slack.messages("C1") if "thread_ts" not in m]
    assert sorted(m["text"] for m in top_level) == [
        "crash:a:web #1",
        "crash:b:web #1",
        "slow:c:web #1",
    ]
    assert slack.violations == []


def test_a_429_holds_every_send_until_retry_after(db, slack, client):
    outbox = Outbox(db)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    outbox.enqueue("crash:b:web", "C1", "post", "b", T0)
    slack.fail_next("chat.postMessage", count=1, status=429, retry_after=30)
    sender = OutboxSender(db, client)

    report = sender.send_due(T0)
    assert (report.sent, report.rate_limited_until) == (0, T0 + 30 * SECOND)
    assert sender.send_due(T0 + 29 * SECOND).sent == 0
    assert len(slack.faults_served) == 1 and slack.calls == []  # nothing asked of Slack
    assert sender.send_due(T0 + 30 * SECOND).sent == 2
    assert [call.args["text"] for call in ok_calls(slack)] == ["a", "b"]


@pytest.mark.parametrize("retry_after", [10**12, 7 * 24 * 3600])
def test_a_429_asking_past_the_longest_pause_waits_that_pause_only(db, slack, client, retry_after):
    # Its Retry-After was taken whole: 10**12 seconds overflowed the date, and every round
    # raised from then on; a week held every alert for the week.
    Outbox(db).enqueue("crash:a:web", "C1", "post", "a", T0)
    slack.fail_next("chat.postMessage", count=1, status=429, retry_after=retry_after)
    sender = OutboxSender(db, client)
    assert sender.send_due(T0).rate_limited_until == T0 + MAX_PAUSE
    assert sender.send_due(T0 + MAX_PAUSE).sent == 1


@pytest.mark.parametrize("method", ["chat.postMessage", "chat.update"])
def test_slacks_rate_limited_answer_delays_the_alert_and_loses_nothing(db, slack, client, method):
    # Slack's spec lists `rate_limited` (too many messages) among chat.postMessage's and
    # chat.update's errors: the sender read it as a permanent one, and the alert was failed.
    outbox = Outbox(db)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    outbox.enqueue("crash:a:web", "C1", "update", "a, later", T0)
    slack.fail_next(method, count=2, status=200, error="rate_limited")
    drain(OutboxSender(db, client), outbox, T0)
    assert [(e.state, e.kind) for e in outbox.entries()] == [("sent", "post"), ("sent", "update")]
    assert [m["text"] for m in slack.messages("C1")] == ["a, later"]


@pytest.mark.parametrize(
    ("retry_after", "pause"),
    [("Fri, 31 Dec 2099 23:59:59 GMT", MAX_PAUSE), ("Sat, 01 Jan 2000 00:00:00 GMT", SECOND)],
)
def test_a_429_whose_retry_after_is_an_http_date_waits_until_that_date(
    db, slack, client, retry_after, pause
):
    # HTTP allows a date there; it was read as no Retry-After at all, and the outbox asked
    # Slack again after a second, whatever the date said.
    Outbox(db).enqueue("crash:a:web", "C1", "post", "a", T0)
    slack.fail_next("chat.postMessage", count=1, status=429, retry_after=retry_after)
    assert OutboxSender(db, client).send_due(T0).rate_limited_until == T0 + pause


def test_server_errors_back_off_exponentially_for_that_incident_only(db, slack, client):
    outbox = Outbox(db)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    sender = OutboxSender(db, client, backoff=timedelta(seconds=2))
    assert sender.send_due(T0).sent == 1
    outbox.enqueue("crash:a:web", "C1", "update", "a, more", T0)
    outbox.enqueue("crash:a:web", "C1", "reply", "a2", T0)
    outbox.enqueue("crash:b:web", "C1", "post", "b", T0)
    slack.fail_next("chat.update", count=3, status=500)

    waits = []
    now = T0
    while True:
        report = sender.send_due(now)
        head = outbox.entries("crash:a:web")[1]
        if head.state == "sent":
            break
        waits.append((head.attempts, _utc(head.next_attempt_at) - now))
        now = _utc(head.next_attempt_at)
    assert waits == [(1, 2 * SECOND), (2, 4 * SECOND), (3, 8 * SECOND)]
    assert report.sent == 2  # a's update and then its reply, in that order
    assert [call.args["text"] for call in ok_calls(slack)] == ["a", "b", "a, more", "a2"]
    assert all(entry.last_error is None for entry in outbox.entries())


def test_a_long_backlog_behind_a_head_in_backoff_holds_only_its_own_incident(db, slack, client):
    outbox = Outbox(db)
    sender = OutboxSender(db, client, batch=50)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    assert sender.send_due(T0).sent == 1
    outbox.enqueue("crash:a:web", "C1", "update", "a, more", T0)
    for n in range(60):  # more rows behind a's stuck head than one batch holds
        outbox.enqueue("crash:a:web", "C1", "reply", f"a{n}", T0)
    outbox.enqueue("crash:b:web", "C2", "post", "b", T0)
    slack.fail_next("chat.update", count=100, status=503)

    sender.send_due(T0)
    sender.send_due(T0 + SECOND)  # a's head is still in backoff

    assert [call.args["text"] for call in ok_calls(slack)] == ["a", "b"]
    assert [m["text"] for m in slack.messages("C2")] == ["b"]


def test_the_backoff_stays_at_its_cap_however_many_attempts(db, slack, client):
    outbox = Outbox(db)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    with db.session() as session, session.begin():
        session.execute(update(AlertOutboxEntry).values(attempts=60))  # retried for hours
    slack.fail_next("chat.postMessage", count=1, status=503)
    report = OutboxSender(db, client, max_backoff=timedelta(minutes=5)).send_due(T0)
    assert report.retrying == 1
    [row] = outbox.entries()
    assert _utc(row.next_attempt_at) == T0 + timedelta(minutes=5)


def test_a_row_that_keeps_failing_is_given_up_after_a_day(db, slack, client, caplog):
    outbox = Outbox(db)
    sender = OutboxSender(db, client)
    post = outbox.enqueue("crash:a:web", "C1", "post", "the alert text", T0)
    reply = outbox.enqueue("crash:a:web", "C1", "reply", "a2", T0)
    slack.fail_next("chat.postMessage", count=10**6, status=503)

    now = T0
    with caplog.at_level(logging.WARNING, logger="bot.worker.outbox_sender"):
        for _ in range(1000):
            sender.send_due(now)
            [head] = [e for e in outbox.entries() if e.id == post]
            if head.state != "pending":
                break
            now = _utc(head.next_attempt_at)
    assert head.state == "failed" and head.last_error.startswith("gave up: http 503")
    assert timedelta(days=1) <= now - T0 < timedelta(days=1, minutes=5)
    assert head.attempts == len(slack.faults_served) < 300  # bounded, at the 5-minute backoff
    given_up = [r for r in caplog.records if r.getMessage() == "alert given up"]
    assert [(r.id, r.attempts) for r in given_up] == [(post, head.attempts)]
    assert not any("the alert text" in str(vars(r)) for r in caplog.records)
    # What queued behind it is as old: one try each, not another day.
    sender.send_due(now + SECOND)
    [behind] = [e for e in outbox.entries() if e.id == reply]
    assert (behind.state, behind.attempts) == ("failed", 1)


def test_queued_updates_of_one_message_collapse_into_the_newest(db, slack, client):
    outbox = Outbox(db)
    sender = OutboxSender(db, client)
    outbox.enqueue("slow:a:web", "C1", "post", "a", T0)
    assert sender.send_due(T0).sent == 1
    slack.fail_next("chat.update", count=10**6, status=503)
    for minute in range(1, 31):  # a condition that persists: an update each watch tick
        now = T0 + minute * 60 * SECOND
        outbox.enqueue("slow:a:web", "C1", "update", f"a, {minute} min", now)
        sender.send_due(now)

    [waiting] = [e for e in outbox.entries() if e.state != "sent"]
    assert (waiting.kind, waiting.payload["text"]) == ("update", "a, 30 min")
    # It kept the backoff of the rows it replaced: no fresh retry every minute.
    assert waiting.attempts == len(slack.faults_served) < 15
    assert _utc(waiting.next_attempt_at) > now


def test_an_update_replaces_only_updates_of_the_same_message_after_its_last_reply(
    db, slack, client
):
    outbox = Outbox(db)
    sender = OutboxSender(db, client)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    assert sender.send_due(T0).sent == 1
    for kind, text in [
        ("update", "a, 2"),
        ("reply", "a thread"),
        ("update", "a, 3"),
        ("update", "a, 4"),  # replaces "a, 3" only
        ("post", "a again"),  # reopened: a new message
        ("update", "a again, 2"),
        ("update", "a again, 3"),  # replaces "a again, 2", never an edit of the first
    ]:
        outbox.enqueue("crash:a:web", "C1", kind, text, T0)
    outbox.enqueue("crash:b:web", "C1", "update", "b, 2", T0)  # another incident's
    drain(sender, outbox, T0)

    delivered = [call.args["text"] for call in ok_calls(slack)]
    assert [text for text in delivered if not text.startswith("b")] == [
        "a",
        "a, 2",
        "a thread",
        "a, 4",
        "a again",
        "a again, 3",
    ]
    assert sorted(m["text"] for m in slack.messages("C1")) == [
        "a again, 3",
        "a thread",
        "a, 4",
        "b, 2",
    ]


def test_two_senders_never_send_the_same_row(db, slack, client):
    outbox = Outbox(db)
    incidents = [f"crash:app{n}:web" for n in range(8)]
    for step in range(3):
        for incident in incidents:
            outbox.enqueue(
                incident, "C1", "post" if step == 0 else "reply", f"{incident} {step}", T0
            )
    slack.latency = 0.01  # widen the window in which both could pick the same row
    senders = [OutboxSender(db, client), OutboxSender(db, client)]
    errors: list[BaseException] = []

    def run(sender: OutboxSender) -> None:
        try:
            for _ in range(200):
                sender.send_due(T0)
                if all(entry.state == "sent" for entry in outbox.entries()):
                    return
        except BaseException as error:  # surfaced below: a thread's failure is the test's
            errors.append(error)

    threads = [threading.Thread(target=run, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    delivered = [call.args["text"] for call in ok_calls(slack)]
    assert len(delivered) == len(set(delivered)) == 24
    for incident in incidents:
        assert [text for text in delivered if text.startswith(incident + " ")] == [
            f"{incident} {step}" for step in range(3)
        ]


def test_a_claimed_row_holds_its_incident_until_the_claim_expires(db, slack, client):
    outbox = Outbox(db)
    first = outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    outbox.enqueue("crash:a:web", "C1", "reply", "a2", T0)
    with db.session() as session, session.begin():
        # Another sender claimed the post and died before it could mark it.
        session.execute(
            update(AlertOutboxEntry)
            .where(AlertOutboxEntry.id == first)
            .values(state="sending", claimed_until=T0 + 60 * SECOND)
        )
    sender = OutboxSender(db, client)
    assert sender.send_due(T0 + 59 * SECOND).sent == 0
    assert slack.calls == []
    assert sender.send_due(T0 + 60 * SECOND).sent == 2


def test_a_post_whose_sent_mark_the_database_lost_is_not_posted_again(db, slack, client):
    # Slack took the post, then the database went (a failover) before the row was marked
    # sent: the job failed, the claim ran out, and the next round posted the alert again,
    # its replies threaded under the second copy.
    from sqlalchemy.exc import OperationalError

    outbox = Outbox(db)
    outbox.enqueue("crash:a:web", "C1", "post", "a crashed", T0)
    sender = OutboxSender(db, client)
    marks = []
    mark_sent = sender._mark_sent

    def database_gone_once(*args):
        marks.append(args)
        if len(marks) == 1:
            raise OperationalError("UPDATE alert_outbox", {}, Exception("server closed"))
        mark_sent(*args)

    sender._mark_sent = database_gone_once  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        sender.send_due(T0)
    outbox.enqueue("crash:a:web", "C1", "reply", "still crashing", T0 + 61 * SECOND)
    drain(sender, outbox, T0 + 61 * SECOND)  # the database back, the claim run out
    posts = ok_calls(slack, "chat.postMessage")
    assert [call.args["text"] for call in posts] == ["a crashed", "still crashing"]
    assert posts[1].args["thread_ts"] == posts[0].response["ts"]


def test_a_permanent_error_fails_that_row_and_the_rest_carry_on(db, slack, client):
    outbox = Outbox(db)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0, blocks=[{"text": "no type"}])
    outbox.enqueue("crash:a:web", "C1", "update", "a, later", T0)
    outbox.enqueue("crash:b:web", "C1", "post", "b", T0)
    report = OutboxSender(db, client).send_due(T0)
    assert (report.sent, report.failed) == (2, 1)
    [bad, later] = outbox.entries("crash:a:web")
    assert (bad.state, bad.last_error) == ("failed", "invalid_blocks")
    # The update found no message to edit, so it became the incident's message.
    assert later.state == "sent" and later.ts is not None
    assert sorted(m["text"] for m in slack.messages("C1")) == ["a, later", "b"]


def test_a_client_that_sleeps_through_429s_is_refused(db, slack):
    sleepy = WebClient(token=slack.bot_token, base_url=slack.api_url)
    sleepy.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    with pytest.raises(ValueError, match="RateLimitErrorRetryHandler"):
        OutboxSender(db, sleepy)


def test_a_crash_loop_is_one_thread_updated_in_place_and_resolved(db, slack, client):
    alerts = Alerts(db, Rules(quiet=timedelta(minutes=10)))
    sender = OutboxSender(db, client)
    channels = {"myapp": "C_MYAPP"}.get
    for tick in range(5):
        events = [
            Event("myapp", "crash", "web", T0 + (tick * 10 + i) * SECOND, f"web.{i + 1} crashed")
            for i in range(10)
        ]
        now = T0 + (tick * 10 + 10) * SECOND
        alerts.record(events, now, channels)
        sender.send_due(now)
    [incident] = alerts.incidents("myapp")
    assert (incident.count, incident.state) == (50, "open")
    [message] = slack.messages("C_MYAPP")
    assert incident.message_ts == message["ts"] and incident.channel == "C_MYAPP"
    assert "50 times" in message["text"]

    later = T0 + 20 * 60 * SECOND
    alerts.record([], later, channels)
    sender.send_due(later)
    [message, reply] = slack.messages("C_MYAPP")
    assert message["text"].startswith(":white_check_mark: Resolved: *myapp*")
    assert reply["thread_ts"] == message["ts"] and reply["text"].startswith("Resolved: no new")
    assert len(ok_calls(slack, "chat.postMessage")) == 2
    assert len(ok_calls(slack, "chat.update")) == 5  # four crash-count updates, one resolution
    assert alerts.incidents("myapp")[0].state == "resolved"
    assert slack.violations == []


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _incident(db: Database, key: str, state: str = "open") -> None:
    kind, app, subject = key.split(":")
    with db.session() as session, session.begin():
        session.add(
            IncidentRow(
                key=key,
                app=app,
                kind=kind,
                subject=subject,
                severity="critical",
                state=state,
                detail="",
                first_at=T0,
                last_at=T0,
                count=1,
            )
        )


def test_old_sent_rows_are_forgotten_but_the_message_row_stays(db, slack, client):
    outbox = Outbox(db)
    sender = OutboxSender(db, client)
    _incident(db, "crash:a:web")  # open: its message may still be edited
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    outbox.enqueue("crash:a:web", "C1", "update", "a, more", T0)
    outbox.enqueue("crash:a:web", "C1", "reply", "a2", T0)
    assert sender.send_due(T0).sent == 3
    assert outbox.forget_sent_before(T0) == 0  # nothing is older than the cutoff
    assert outbox.forget_sent_before(T0 + SECOND) == 2
    [kept] = outbox.entries()
    assert kept.kind == "post"
    # A later update still finds the message to edit.
    outbox.enqueue("crash:a:web", "C1", "update", "a, resolved", T0 + SECOND)
    assert sender.send_due(T0 + SECOND).sent == 1
    assert [m["text"] for m in slack.messages("C1")] == ["a, resolved", "a2"]


def test_retention_forgets_failed_rows_summaries_and_messages_nothing_will_edit(db, slack, client):
    outbox = Outbox(db)
    sender = OutboxSender(db, client)
    _incident(db, "crash:open:web")
    _incident(db, "crash:done:web", state="resolved")
    _incident(db, "crash:closing:web", state="resolved")
    outbox.enqueue("crash:open:web", "C1", "post", "open", T0)
    outbox.enqueue("crash:done:web", "C1", "post", "done", T0)
    outbox.enqueue("crash:closing:web", "C1", "post", "closing", T0)
    outbox.enqueue(f"summary:C1:{T0.isoformat()}", "C1", "post", "3 more alerts", T0)
    outbox.enqueue("autoscale:C1", "C1", "post", "scaled web to 3", T0)
    outbox.enqueue("crash:bad:web", "C1", "post", "bad", T0, blocks=[{"text": "no type"}])
    report = sender.send_due(T0)
    assert (report.sent, report.failed) == (5, 1)
    # The resolution of "closing" is still queued: it edits the message and replies under it.
    outbox.enqueue("crash:closing:web", "C1", "update", "closing, resolved", T0)
    outbox.enqueue("crash:closing:web", "C1", "reply", "closing: resolved", T0)

    assert outbox.forget_sent_before(T0) == 0  # nothing is older than the cutoff
    assert outbox.forget_sent_before(T0 + 8 * 24 * 3600 * SECOND) == 4
    assert [(e.incident_key, e.kind, e.state) for e in outbox.entries()] == [
        ("crash:open:web", "post", "sent"),
        ("crash:closing:web", "post", "sent"),
        ("crash:closing:web", "update", "pending"),
        ("crash:closing:web", "reply", "pending"),
    ]
    assert sender.send_due(T0 + 8 * 24 * 3600 * SECOND).sent == 2
    [closing, reply] = [m for m in slack.messages("C1") if m["text"].startswith("closing")]
    assert reply["thread_ts"] == closing["ts"]  # still found the message to reply under


def test_alerts_carry_the_blocks_the_caller_builds(db, slack, client):
    def blocks_for(notice, incident):
        if incident is None or incident.state != "open":
            return None
        button = {
            "type": "button",
            "action_id": "alert_restart",
            "text": {"type": "plain_text", "text": "Restart dyno"},
            "value": incident.key,
        }
        return [
            {"type": "section", "text": {"type": "mrkdwn", "text": notice.text}},
            {"type": "actions", "elements": [button]},
        ]

    alerts = Alerts(db, blocks_for=blocks_for)
    alerts.record([Event("myapp", "crash", "web", T0, "web.1 crashed")], T0, {"myapp": "C1"}.get)
    OutboxSender(db, client).send_due(T0)
    [message] = slack.messages("C1")
    assert message["blocks"][1]["elements"][0]["value"] == "crash:myapp:web"
    assert slack.violations == []


def test_a_429_pause_holds_for_the_next_leader_after_a_handover(config, slack):
    # The pause is the Slack app's, not the sender's: a worker that takes the lease over
    # mid-pause (the old one restarted, or lost the lease) must wait out Retry-After too.
    from bot.worker.main import Worker

    outbox = Outbox(Database(config.database_url))
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    outbox.enqueue("crash:b:web", "C1", "post", "b", T0)
    slack.fail_next("chat.postMessage", count=1, status=429, retry_after=30)
    first, second = Worker(config), Worker(config)
    assert first.lease.try_acquire() and not second.lease.try_acquire()
    assert first.send_alerts(T0) == 0
    first.lease.release()
    assert second.lease.try_acquire()
    try:
        assert second.send_alerts(T0 + 29 * SECOND) == 0
        assert len(slack.faults_served) == 1 and slack.calls == []  # nothing asked of Slack
        assert second.send_alerts(T0 + 30 * SECOND) == 2
        assert [call.args["text"] for call in ok_calls(slack)] == ["a", "b"]
    finally:
        second.lease.release()


def test_a_claim_made_late_in_a_slow_round_still_holds_off_a_second_sender(db, slack):
    """A round's second row is claimed after the first took Slack 2 s: its claim must run
    from then. It ran from the round's start, so it was already expired when made, and a
    sender starting meanwhile (the next leader, while the old one finishes its round) sent
    the row a second time."""
    outbox = Outbox(db)
    outbox.enqueue("crash:a:web", "C1", "post", "a", T0)
    outbox.enqueue("crash:b:web", "C1", "post", "b", T0)
    slack.latency = 2.0
    slow = web_client(slack.bot_token, slack.api_url, timeout=10)
    lease = timedelta(seconds=1.5)
    first = OutboxSender(db, slow, lease=lease)
    second = OutboxSender(db, slow, lease=lease)
    round_ = threading.Thread(target=first.send_due, args=(datetime.now(UTC),))
    round_.start()
    # The first sender claimed `b` about 2 s in, and waits for Slack until about 4 s.
    threading.Event().wait(2.7)
    late = second.send_due(datetime.now(UTC))
    round_.join(timeout=30)
    assert late.sent == 0
    assert sorted(call.args["text"] for call in ok_calls(slack)) == ["a", "b"]


def test_slack_not_answering_ends_the_round_instead_of_waiting_on_every_incident(db, slack):
    """Slack that does not answer at all is down for every incident: one timeout ends the
    round. Each head had waited its own timeout in turn, so thirty open incidents held the
    job for thirty timeouts (15 minutes at the bot's 30 s), every round, for the outage."""
    outbox = Outbox(db)
    for n in range(4):
        outbox.enqueue(f"crash:app{n}:web", "C1", "post", f"app{n}", T0)
    slack.latency = 1.5
    sender = OutboxSender(db, web_client(slack.bot_token, slack.api_url, timeout=1))
    report = sender.send_due(T0)
    assert report.retrying == 1 and report.sent == 0
    # One call made and timed out; the other three incidents were not tried this round.
    assert [entry.attempts for entry in outbox.entries()] == [1, 0, 0, 0]
    slack.latency = 0
    assert drain(sender, outbox, T0 + SECOND) and {m["text"] for m in slack.messages("C1")} >= {
        f"app{n}" for n in range(4)
    }


def test_a_storm_across_a_fleet_is_queued_in_a_few_statements(db):
    from sqlalchemy import event

    alerts = Alerts(db)
    apps = [f"app-{i:03d}" for i in range(200)]
    statements: list[str] = []
    event.listen(
        db.engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *args: statements.append(sql) if "alert_outbox" in sql else None,
    )
    for tick in range(3):  # a post each, then an update each tick while Slack is away
        now = T0 + tick * 30 * SECOND
        statements.clear()
        step = alerts.record([Event(a, "crash", "web", now) for a in apps], now, lambda a: f"C{a}")
        assert len(step.notices) == 200
        # One INSERT per message (and a DELETE per update): 400 statements a tick here,
        # a thousand apps' worth while holding the lock Heroku's webhooks wait on. Now the
        # incidents' queued posts, the channels' recent posts, the replaced updates and the
        # new rows.
        assert len(statements) <= 4
    queued = Outbox(db).entries()
    # The third tick's updates replaced the second's: one post and one update an app.
    assert sorted((e.incident_key, e.kind) for e in queued) == sorted(
        (f"crash:{a}:web", kind) for a in apps for kind in ("post", "update")
    )
    updates = {e.payload["text"].split(" crashed ")[1][:13] for e in queued if e.kind == "update"}
    assert updates == {"3 times since"}


def test_an_update_of_a_message_someone_deleted_posts_it_again(db, slack, client):
    # A person deleted the alert in Slack: its updates (every minute for a condition, its
    # "Resolved" at the end) had each been marked failed, and `/deploy about` named the
    # channel as refusing the bot's messages until the next alert got through.
    outbox = Outbox(db)
    sender = OutboxSender(db, client)
    outbox.enqueue("slow:a:web p95", "C1", "post", "slow", T0)
    sender.send_due(T0)
    slack.fail_next("chat.update", status=200, error="message_not_found")
    outbox.enqueue("slow:a:web p95", "C1", "update", "slow, still", T0 + SECOND)
    report = sender.send_due(T0 + SECOND)
    assert (report.sent, report.failed) == (1, 0)
    [_, again] = outbox.entries("slow:a:web p95")
    assert again.state == "sent" and again.ts is not None
    # Later updates edit the message posted again.
    outbox.enqueue("slow:a:web p95", "C1", "update", "resolved", T0 + 2 * SECOND)
    sender.send_due(T0 + 2 * SECOND)
    assert [c.args["ts"] for c in ok_calls(slack, "chat.update")] == [again.ts]


def test_an_app_given_another_channel_closes_its_alert_there_and_posts_anew_here(db, slack, client):
    alerts = Alerts(db, Rules(quiet=timedelta(minutes=10)))
    sender = OutboxSender(db, client)
    crash = Event("myapp", "crash", "web", T0, "web.1 crashed")
    alerts.record([crash], T0, {"myapp": "C_MYAPP"}.get)
    sender.send_due(T0)
    # The registry now sends myapp's alerts to C0OTHER, and it crashes again.
    later = T0 + 60 * SECOND
    again = Event("myapp", "crash", "web", later, "web.2 crashed")
    alerts.record([again], later, {"myapp": "C0OTHER"}.get)
    sender.send_due(later)
    [old, reply] = slack.messages("C_MYAPP")
    assert old["text"].startswith(":heavy_minus_sign: Closed: *myapp* `web` dynos crashed")
    assert reply["thread_ts"] == old["ts"] and "<#C0OTHER>" in reply["text"]
    [new] = slack.messages("C0OTHER")
    assert new["text"].startswith(":red_circle: *myapp* `web` dynos crashed at 15:01 UTC")
    [incident] = alerts.incidents("myapp")
    assert (incident.state, incident.channel, incident.message_ts) == ("open", "C0OTHER", new["ts"])
    assert slack.violations == []
