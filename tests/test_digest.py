"""The daily digest: when it is due, its numbers, and the worker's job posting it once per
day with its chart into the app's channel through the fake Slack."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.metrics.aggregate import Window
from bot.metrics.store import MetricsStore
from bot.registry import Registry, RegistryError
from bot.store.audit import Actor, AuditLog
from bot.store.autoscale_settings import AutoscaleStore, Decision
from bot.worker.digest import MAX_TRIES, DigestJob
from bot.worker.main import Worker
from policies.digest import DigestTime, day_numbers, due, duration, parse_digest
from tests.conftest import ADMIN
from tests.test_charts import png_info

PARIS = ZoneInfo("Europe/Paris")
_DAY: list[date] = []


@pytest.fixture(autouse=True)
def _one_day_a_test() -> None:
    """Paris's date, read once a test: read at each use, a test running across midnight in
    Paris (23:00 UTC in winter) mixed two days (yesterday's traffic saved on one, 9:30 on
    the next, or a second 9:30 a day later that posts again) and failed."""
    _DAY[:] = [datetime.now(PARIS).date()]


def _today() -> date:
    return _DAY[0]


REGISTRY = """\
apps:
  myapp:
    platform: heroku
    channel: C0MYAPP
    digest: "09:00 Europe/Paris"
  other-app:
    platform: heroku
"""


def test_digest_times_parse_and_bad_ones_say_why():
    assert parse_digest("09:00 Europe/Paris") == DigestTime(time(9), "Europe/Paris")
    assert parse_digest("7:30") == DigestTime(time(7, 30), "UTC")
    with pytest.raises(ValueError, match="not a digest time"):
        parse_digest("9am")
    with pytest.raises(ValueError, match="not a time zone"):
        parse_digest("09:00 Mars/Olympus")
    with pytest.raises(RegistryError, match="digest"):
        Registry.parse("apps:\n  a:\n    platform: heroku\n    digest: '25:00'\n")


def test_a_digest_is_due_after_its_local_time_and_covers_the_local_yesterday():
    spec = parse_digest("09:00 Europe/Paris")
    assert due(spec, datetime(2026, 11, 30, 7, 59, tzinfo=UTC)) is None  # 08:59 in Paris
    day, start, end = due(spec, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert day == date(2026, 11, 29)
    assert (start, end) == (
        datetime(2026, 11, 28, 23, tzinfo=UTC),
        datetime(2026, 11, 29, 23, tzinfo=UTC),
    )


def test_day_numbers_compare_the_day_with_a_static_peak():
    start = 0.0
    samples = [(start, 1), (start + 6 * 3600, 4), (start + 8 * 3600, 1)]
    hourly = [0] * 24
    hourly[7] = 500
    numbers = day_numbers("heroku", "standard-1x", samples, start, start + 86400, hourly)
    # 300 s at most between ticks: 1×300 + 4×300 + 1×300 seconds.
    assert numbers.dyno_hours == pytest.approx(1800 / 3600)
    assert numbers.peak == 4
    hourly_price = 25.0 / 730
    # The static formation over the same 15 minutes the record covers: priced for all 24
    # hours, it had "saved" 23¾ hours of 4 dynos the record knew nothing of.
    assert numbers.covered_hours == pytest.approx(0.25) and numbers.day_hours == 24
    assert numbers.static_usd == pytest.approx(4 * 0.25 * hourly_price)
    assert numbers.saving_usd == pytest.approx(numbers.static_usd - 0.5 * hourly_price)
    assert (numbers.busiest_start, numbers.busiest_requests) == (7 * 3600, 500)
    assert duration(4500) == "1 h 15 min" and duration(59) == "59 s"


@pytest.mark.parametrize(
    ("day", "traffic", "busiest"),
    [
        # 25 hours: 02:00 comes twice (00:00 and 01:00 UTC), each hour less busy than 14:00.
        (
            date(2026, 10, 25),
            [
                (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 30),
                (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), 30),
                (datetime(2026, 10, 25, 13, 30, tzinfo=UTC), 40),
            ],
            "Busiest hour: 14:00–15:00 with 40 requests.",
        ),
        # The second 02:00 (in winter time) is the busiest: which one is said.
        (
            date(2026, 10, 25),
            [
                (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 20),
                (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), 30),
            ],
            "Busiest hour: 02:00–03:00 CET with 30 requests.",
        ),
        # 23 hours: 01:00 in winter time ends at 03:00 in summer time, there is no 02:00.
        (
            date(2026, 3, 29),
            [
                (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 50),
                (datetime(2026, 3, 29, 12, 30, tzinfo=UTC), 40),
            ],
            "Busiest hour: 01:00–02:00 CET with 50 requests.",
        ),
    ],
)
def test_the_busiest_hour_on_a_23_or_25_hour_day_is_one_hour(worker, slack, day, traffic, busiest):
    # The two 02:00s of an autumn day were added into one "02:00–03:00", busier than any
    # real hour of the day.
    MetricsStore(worker.db).save([Window("myapp", int(at.timestamp()), n) for at, n in traffic])
    now = datetime.combine(day + timedelta(days=1), time(9, 30), PARIS).astimezone(UTC)
    assert worker.post_digests(now) == 1
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert busiest in upload.initial_comment, upload.initial_comment


@pytest.fixture
def worker(config, tmp_path, monkeypatch):
    path = tmp_path / "deploybot.yml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    made = Worker(config)
    yield made
    made.services().db.dispose()
    made.db.dispose()


def test_the_worker_posts_yesterdays_digest_once_with_its_chart(worker, slack):
    today = _today()
    yesterday = today - timedelta(days=1)
    two_pm = datetime.combine(yesterday, time(14), PARIS)
    windows = [
        Window("myapp", int(two_pm.timestamp()) + s, 30, dynos={"web.1": 30})
        for s in range(0, 1800, 10)
    ]
    MetricsStore(worker.db).save(windows)
    store = AutoscaleStore(worker.db)
    for minute, (actual, desired, acted) in enumerate(((1, 2, True), (2, 2, False))):
        at = (two_pm + timedelta(minutes=minute * 30)).astimezone(UTC)
        store.record(Decision("myapp", at, actual, desired, acted, "queue above target"))
    nine_thirty = datetime.combine(today, time(9, 30), PARIS).astimezone(UTC)
    assert worker.post_digests(nine_thirty) == 1
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert upload.channel == "C0MYAPP"
    comment = upload.initial_comment
    assert f"Daily digest for `myapp`: {yesterday:%A %d %B %Y}" in comment
    assert "Busiest hour: 14:00–15:00 with 5,400 requests." in comment
    assert "web 1 → 2 by the autoscaler" in comment and "Web dyno-hours:" in comment
    assert "would have cost" in comment and "Incidents: none." in comment
    # Two ticks, 30 minutes apart, speak for 10 minutes: the comparison says so.
    assert (
        "would have cost $0.01 over the 0.2 h the record covers: autoscaling saved $0." in comment
    )
    # The chart is of that day, on Paris's clock, as the words are: it had been titled
    # "last 24 h (UTC)", its hours an hour off the digest's.
    assert upload.title == f"myapp: {yesterday:%A %d %B %Y}"
    assert json.loads(png_info(upload.data)[2]["Description"])["zone"] == "Europe/Paris"
    # Again, and from another worker: the day is claimed, so nothing more is posted.
    assert worker.post_digests(nine_thirty + timedelta(minutes=1)) == 0
    assert len(slack.uploads) == 1 and slack.calls_to("chat.postMessage") == []


def test_before_its_time_nothing_is_posted(worker, slack):
    today = _today()
    eight = datetime.combine(today, time(8), PARIS).astimezone(UTC)
    assert worker.post_digests(eight) == 0
    assert slack.calls == []


def _nine_thirty(minutes: int = 0) -> datetime:
    today = _today()
    return datetime.combine(today, time(9, 30), PARIS).astimezone(UTC) + timedelta(minutes=minutes)


def _digest_calls(slack) -> int:
    # Requests answered by an injected fault are counted there, not among the calls.
    return len(slack.faults_served)


def test_a_digest_slack_refuses_is_not_rebuilt_and_resent_every_minute(worker, slack, caplog):
    # Slack's `ok: false` (the bot not in the channel, a revoked token) lasts until a
    # person acts: the day had been given back each time, about 900 posts a day per app.
    slack.fail_next("files.getUploadURLExternal", count=1000, status=400)
    slack.fail_next("chat.postMessage", count=1000, status=400)
    for minute in range(10):
        assert worker.post_digests(_nine_thirty(minute)) == 0
    assert _digest_calls(slack) == 1  # one upload, refused, and the day is left alone
    [given_up] = [r for r in caplog.records if r.getMessage() == "digest not posted today"]
    assert given_up.why == "request_failed"


def test_a_digest_slack_fails_to_take_is_tried_again_a_few_times(worker, slack):
    slack.fail_next("files.getUploadURLExternal", count=1000, status=503)
    slack.fail_next("chat.postMessage", count=1000, status=503)
    for minute in range(10):
        worker.post_digests(_nine_thirty(minute))
    # Given back while it may pass (one upload a minute), then given up for the day.
    assert _digest_calls(slack) == MAX_TRIES


@pytest.mark.parametrize("code", ["internal_error", "service_unavailable", "request_timeout"])
def test_slacks_passing_errors_answered_200_are_tried_again(code):
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    from bot.worker.digest import _transient

    answer = SlackResponse(
        client=None, http_verb="POST", api_url="u", req_args={}, data={"ok": False, "error": code},
        headers={}, status_code=200,
    )  # fmt: skip
    assert _transient(SlackApiError("x", answer))
    refused = SlackResponse(
        client=None, http_verb="POST", api_url="u", req_args={},
        data={"ok": False, "error": "not_in_channel"}, headers={}, status_code=200,
    )  # fmt: skip
    assert not _transient(SlackApiError("x", refused))


def _fleet_of(count: int, tmp_path, monkeypatch) -> None:
    """A registry of `count` apps, each with its channel and a digest at 09:00 in Paris."""
    fleet = "apps:\n" + "".join(
        f"  app-{i:02d}:\n    platform: heroku\n    app: myapp\n    channel: C0APP{i:02d}\n"
        '    digest: "09:00 Europe/Paris"\n'
        for i in range(count)
    )
    path = tmp_path / "deploybot.yml"
    path.write_text(fleet)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))


def test_a_fleets_posted_digests_cost_one_query_a_minute_not_one_per_app(
    config, slack, tmp_path, monkeypatch
):
    from sqlalchemy import event

    _fleet_of(40, tmp_path, monkeypatch)
    worker = Worker(config)
    try:
        assert worker.post_digests(_nine_thirty()) == 40
        statements: list[str] = []
        event.listen(
            worker.services().db.engine,
            "before_cursor_execute",
            lambda conn, cursor, sql, *args: statements.append(sql),
        )
        # Every minute until midnight: each app's day had been claimed again, one INSERT
        # per app a minute (a thousand apps: 1,000 statements a minute, all day).
        for minute in range(1, 4):
            assert worker.post_digests(_nine_thirty(minute)) == 0
        assert len(statements) == 3
    finally:
        worker.services().db.dispose()
        worker.db.dispose()


def test_a_429_pauses_the_fleets_digests_until_retry_after_and_loses_none(
    config, slack, tmp_path, monkeypatch
):
    # At 09:00 a fleet's digests fall due together; Slack's 429 asks the app to wait. Each
    # app's digest had been posted anyway, one 429 each a minute, each counted as a failed
    # try: ten minutes of Retry-After gave every app's day up after five.
    _fleet_of(10, tmp_path, monkeypatch)
    worker = Worker(config)
    try:
        slack.fail_next("chat.postMessage", count=1000, status=429, retry_after=600)
        for minute in range(10):
            assert worker.post_digests(_nine_thirty(minute)) == 0
        assert _digest_calls(slack) == 1  # one 429, then nothing until its Retry-After
        slack.reset()
        assert worker.post_digests(_nine_thirty(10)) == 10
        assert len(slack.calls_to("chat.postMessage")) == 10
    finally:
        worker.services().db.dispose()
        worker.db.dispose()


@pytest.mark.parametrize("step", ["files.getUploadURLExternal", "files.completeUploadExternal"])
def test_a_429_on_the_charts_upload_pauses_the_digest_instead_of_posting_it_without(
    worker, slack, step
):
    # The upload's 429 had been read as "could not upload": the day's digest went out as
    # text saying "I could not upload the chart (`ratelimited`)", chart lost for good.
    yesterday = _today() - timedelta(days=1)
    two_pm = datetime.combine(yesterday, time(14), PARIS)
    MetricsStore(worker.db).save(
        [Window("myapp", int(two_pm.timestamp()) + s, 30) for s in range(0, 600, 10)]
    )
    slack.fail_next(step, count=1000, status=429, retry_after=600)
    for minute in range(10):
        assert worker.post_digests(_nine_thirty(minute)) == 0
    assert _digest_calls(slack) == 1  # one 429, then nothing until its Retry-After
    assert slack.calls_to("chat.postMessage") == []
    slack.reset()
    assert worker.post_digests(_nine_thirty(10)) == 1
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert "could not upload" not in upload.initial_comment
    assert slack.calls_to("chat.postMessage") == []


def test_a_digest_the_database_failed_under_is_posted_when_it_is_back(worker, slack):
    # The database went while the day's digest was built (a failover): the day stayed
    # claimed, since giving it back failed too, and no digest went out that day.
    from sqlalchemy.exc import OperationalError

    gone = OperationalError("SELECT", {}, Exception("server closed the connection"))
    services = worker.services()
    build, release = services.dashboards.digest, services.request_keys.release
    services.dashboards.digest = lambda *args: (_ for _ in ()).throw(gone)

    def release_gone(key):
        raise gone

    services.request_keys.release = release_gone
    with pytest.raises(OperationalError):
        worker.post_digests(_nine_thirty())
    services.dashboards.digest, services.request_keys.release = build, release
    assert worker.post_digests(_nine_thirty(1)) == 1
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_digest_reads_its_days_autoscaler_decisions_once(worker, slack):
    from sqlalchemy import event

    two_pm = datetime.combine(_today() - timedelta(days=1), time(14), PARIS)
    MetricsStore(worker.db).save(
        [Window("myapp", int(two_pm.timestamp()) + s, 30) for s in range(0, 600, 10)]
    )
    AutoscaleStore(worker.db).record_many(
        Decision("myapp", (two_pm + timedelta(seconds=15 * k)).astimezone(UTC), 1, 1, False, "ok")
        for k in range(240)
    )
    read: list[str] = []
    event.listen(
        worker.services().db.engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *args: read.append(sql) if "autoscale_decisions" in sql else None,
    )
    assert worker.post_digests(_nine_thirty()) == 1
    # The day's numbers, its scale actions and its chart each read the same decisions (a
    # day of 15-second ticks: 5,760 rows, 0.64 s a digest, three times over).
    assert len(read) == 1


def _about(worker, now: datetime) -> str:
    from bot.actions.health import Health
    from handlers.render import about_lines

    return "\n".join(about_lines(Health(worker.services().heartbeats, list, lambda: now).about()))


def test_a_digest_in_a_public_channel_the_bot_is_not_in_arrives_without_its_chart(worker, slack):
    # With chat:write.public the bot posts in any public channel; only the chart's share
    # needs it to be a member. The fake had refused the words too, unlike Slack.
    two_pm = datetime.combine(_today() - timedelta(days=1), time(14), PARIS)
    MetricsStore(worker.db).save([Window("myapp", int(two_pm.timestamp()), 30)])
    slack.leave_channel("C0MYAPP")
    assert worker.post_digests(_nine_thirty()) == 1
    assert slack.uploads == []
    [message] = slack.messages("C0MYAPP")
    assert message["text"].startswith(
        "I could not upload the chart into <#C0MYAPP> (`not_in_channel`): the bot is not in "
        "that channel: `/invite @deploybot` there."
    ), message["text"]
    assert "Busiest hour: 14:00–15:00 with 30 requests." in message["text"]
    assert "not delivered" not in _about(worker, _nine_thirty(1))


@pytest.mark.parametrize("error", ["not_in_channel", "is_archived", "channel_not_found"])
def test_a_digest_its_channel_refuses_is_named_by_about(worker, slack, error):
    # The bot removed from the app's channel: the day's digest was given up with a line in
    # the worker's log, and `/deploy about` said nothing, as if it had gone out.
    two_pm = datetime.combine(_today() - timedelta(days=1), time(14), PARIS)
    MetricsStore(worker.db).save([Window("myapp", int(two_pm.timestamp()), 30)])
    # not_in_channel reaches a post only in a public channel and without chat:write.public.
    slack.scopes.discard("chat:write.public")
    slack.leave_channel("C0MYAPP", error)
    assert worker.post_digests(_nine_thirty()) == 0
    # The chart's share was refused, then its words without the picture.
    assert slack.uploads == [] and len(slack.calls_to("chat.postMessage")) == 1
    text = _about(worker, _nine_thirty(1))
    assert ":warning: The daily digest to <#C0MYAPP> not delivered (1 since " in text
    assert f"Slack said `{error}`" in text and "Alerts to" not in text


def test_a_digest_given_up_after_slacks_outage_is_named_by_about(worker, slack):
    slack.fail_next("files.getUploadURLExternal", count=1000, status=503)
    slack.fail_next("chat.postMessage", count=1000, status=503)
    for minute in range(MAX_TRIES):
        worker.post_digests(_nine_thirty(minute))
    text = _about(worker, _nine_thirty(MAX_TRIES))
    assert "The daily digest to <#C0MYAPP> not delivered (1 since " in text
    # "since 09:30 UTC" had named no day, for a failure that may be days old.
    dated = r"\(1 since <!date\^\d+\^\{date_short_pretty\} \{time\}\|[-\d]{10} \d\d:\d\d UTC>\)"
    assert re.search(dated, text), text
    assert "Slack said `gave up: service_unavailable`" in text


def test_an_app_whose_api_key_is_not_set_still_gets_its_digest(
    config, slack, tmp_path, monkeypatch
):
    # Its traffic, autoscaler record and incidents are all in the database: only the web
    # size (for the price) needs Heroku. The job had raised before reading any of it, logged
    # a traceback five times a day and posted nothing, every day.
    path = tmp_path / "deploybot.yml"
    path.write_text(REGISTRY.replace("    channel: C0MYAPP\n", "    channel: C0MYAPP\n"
                                     "    api_key_env: NOT_SET_KEY\n"))  # fmt: skip
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    worker = Worker(config)
    try:
        two_pm = datetime.combine(_today() - timedelta(days=1), time(14), PARIS)
        MetricsStore(worker.db).save([Window("myapp", int(two_pm.timestamp()), 30)])
        assert worker.post_digests(_nine_thirty()) == 1
        [upload] = slack.wait_for_uploads(1, timeout=20)
        assert "Busiest hour: 14:00–15:00 with 30 requests." in upload.initial_comment
        assert (
            "Web size unknown, so no prices: The bot has no Heroku API key for `myapp`. "
            "An admin should set NOT_SET_KEY."
        ) in upload.initial_comment
    finally:
        worker.services().db.dispose()
        worker.db.dispose()


def test_releases_and_formation_changes_are_not_the_days_incidents(worker, slack):
    # A release and a formation change are incident rows of severity `info` (a notice in
    # the channel): the digest had listed them as "Incidents (3)", each lasting until the
    # day's end, and the chart had shaded them red like the crash.
    from bot.store.incidents import Alerts
    from policies.incidents import Event

    two_pm = datetime.combine(_today() - timedelta(days=1), time(14), PARIS)
    MetricsStore(worker.db).save([Window("myapp", int(two_pm.timestamp()), 30)])
    at = two_pm.astimezone(UTC) + timedelta(minutes=5)
    Alerts(worker.db).record(
        [
            Event("myapp", "release", "release", at, "v42 Deploy abc123 by someone"),
            Event("myapp", "formation", "web", at, "web 1 → 3"),
            Event("myapp", "crash", "web", at, "web.1 crashed"),
        ],
        at,
        lambda app: None,
    )
    assert worker.post_digests(_nine_thirty()) == 1
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert "Incidents (1):\n• `web` dynos crashed from 14:05 for " in upload.initial_comment
    assert "release from" not in upload.initial_comment


def test_the_days_incidents_read_as_their_alerts_do(worker, slack):
    # The digest had listed the store's words, without what: "router_error from 14:05",
    # twice for H12 and H13, and "queue_unread", where the alert and App Home say
    # "router errors `H12`".
    from bot.store.incidents import Alerts
    from policies.incidents import Event

    two_pm = datetime.combine(_today() - timedelta(days=1), time(14), PARIS)
    MetricsStore(worker.db).save([Window("myapp", int(two_pm.timestamp()), 30)])
    at = two_pm.astimezone(UTC) + timedelta(minutes=5)
    events = [Event("myapp", "router_error", code, at, f"12 {code}") for code in ("H12", "H13")]
    Alerts(worker.db).record(events, at, lambda app: None)
    assert worker.post_digests(_nine_thirty()) == 1
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert "• router errors `H12` from 14:05 for " in upload.initial_comment
    assert "• router errors `H13` from 14:05 for " in upload.initial_comment
    assert "router_error" not in upload.initial_comment


def test_every_opening_of_an_incident_yesterday_is_counted_once_it_reopened(worker, slack):
    # `web` crashed at 10:00 and again at 14:00, resolved in between, and once more this
    # morning before the digest: one incident key, one row, reopened each time, and the
    # digest had said "Incidents: none".
    from bot.store.incidents import Alerts
    from policies.incidents import Event

    yesterday = _today() - timedelta(days=1)
    ten, two = (datetime.combine(yesterday, time(h), PARIS).astimezone(UTC) for h in (10, 14))
    MetricsStore(worker.db).save([Window("myapp", int(ten.timestamp()), 30)])
    alerts = Alerts(worker.db)
    for at in (ten, two):
        alerts.record([Event("myapp", "crash", "web", at, "web.1 crashed")], at, lambda a: None)
        alerts.record([], at + timedelta(minutes=20), lambda a: None)  # resolved
    morning = datetime.combine(yesterday + timedelta(days=1), time(8), PARIS).astimezone(UTC)
    alerts.record([Event("myapp", "crash", "web", morning)], morning, lambda a: None)
    assert worker.post_digests(_nine_thirty()) == 1
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert "Incidents (2):\n• `web` dynos crashed from 10:00 for " in upload.initial_comment
    assert "\n• `web` dynos crashed from 14:00 for " in upload.initial_comment


def test_a_day_of_many_incidents_names_ten_and_counts_the_rest():
    from bot.actions.results import Digest
    from handlers.render import digest_text
    from policies.digest import DayNumbers, Span

    numbers = DayNumbers(None, None, None, None, None, None, 0)
    spans = tuple(Span(3600.0 * i, 3600.0 * i + 60, "crash") for i in range(14))
    text = digest_text(Digest("myapp", date(2026, 12, 1), "UTC", numbers, (), spans, None, False))
    # Ten were listed under "Incidents (14):" and the other four were not mentioned.
    assert text.count("• crash from") == 10 and "• …and 4 more" in text


def test_a_beanstalk_digest_without_instance_hours_says_why_not_that_a_record_is_missing():
    from bot.actions.results import Digest
    from handlers.render import digest_text
    from policies.digest import DayNumbers

    numbers = DayNumbers(None, None, None, None, None, None, 0)
    day = Digest("shop", date(2026, 12, 1), "UTC", numbers, (), (), None, True, unit="instance")
    text = digest_text(day)
    # "no autoscaler record for the day", of an environment the autoscaler never runs.
    assert "Web instance-hours: not counted: its Auto Scaling group scales it" in text, text
    assert "autoscaler record" not in text
    heroku = digest_text(Digest("myapp", date(2026, 12, 1), "UTC", numbers, (), (), None, False))
    assert "Web dynos: no autoscaler record for the day, so no dyno-hours." in heroku


def test_a_worker_stopping_mid_round_leaves_the_rest_to_the_next_leader_each_posted_once(
    config, slack, tmp_path, monkeypatch
):
    # A deploy: SIGTERM reaches the leader as the fleet's 09:00 digests go out. It went on
    # through the whole round, past the 20 s the worker waits for its jobs and into Heroku's
    # SIGKILL, which lost the digest it was building: claimed, so nobody posted it that day.
    _fleet_of(10, tmp_path, monkeypatch)
    old, new = Worker(config), Worker(config)
    post = DigestJob._post

    def post_then_sigterm(self, channel, result):
        post(self, channel, result)
        old.stopping.set()  # the signal comes as the first digest goes

    monkeypatch.setattr(DigestJob, "_post", post_then_sigterm)
    try:
        assert old.post_digests(_nine_thirty()) == 1
        monkeypatch.setattr(DigestJob, "_post", post)
        assert new.post_digests(_nine_thirty()) == 9  # the next leader posts the rest
        channels = [call.args["channel"] for call in slack.calls_to("chat.postMessage")]
        assert sorted(channels) == [f"C0APP{i:02d}" for i in range(10)]
    finally:
        for worker in (old, new):
            worker.services().db.dispose()
            worker.db.dispose()


@pytest.mark.parametrize(
    ("covered", "says"), [(23.99, ": "), (18.0, " over the 18.0 h the record covers: ")]
)
def test_the_static_comparison_names_the_hours_only_for_part_of_a_day(covered, says):
    from bot.actions.results import Digest
    from handlers.render import digest_text
    from policies.digest import DayNumbers

    numbers = DayNumbers(20.0, 0.68, 2, 1.23, 0.55, None, 0, covered, 24.0)
    text = digest_text(Digest("myapp", date(2026, 12, 1), "UTC", numbers, (), (), None, False))
    assert f"(2 web) would have cost $1.23{says}autoscaling saved $0.55." in text, text


def test_a_past_day_s_chart_ends_at_that_day_s_count_not_today_s(worker, heroku):
    today = _today()
    yesterday = today - timedelta(days=1)
    two_pm = datetime.combine(yesterday, time(14), PARIS)
    MetricsStore(worker.db).save(
        [Window("myapp", int(two_pm.timestamp()) + s, 30, dynos={"web.1": 30}) for s in (0, 60)]
    )
    # Nobody changed web yesterday; this morning someone scaled it 1 → 5.
    services = worker.services()
    resolved = services.resolve("myapp")
    before = heroku.formation("myapp")["web"]
    assert before[0] == 1
    resolved.platform.scale("myapp", {"web": (5, None)})
    audit = AuditLog(worker.db)
    entry = audit.start(Actor(ADMIN), "scale", "myapp", "scale web=5 myapp", {"web": before}, None)
    audit.finish(entry, "ok", {"web": (5, before[1])})
    start = datetime.combine(yesterday, time(0), PARIS).astimezone(UTC)
    end = datetime.combine(today, time(0), PARIS).astimezone(UTC)
    day = services.dashboards.digest(resolved.target, yesterday, start, end)
    assert day.chart is not None
    # The day had been drawn ending at today's 5, a step nobody made that day.
    assert {count for _, count in day.chart.web} == {1}, day.chart.web
