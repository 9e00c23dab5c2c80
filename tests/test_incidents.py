"""policies.incidents: grouping, the channel rate limit, silences and resolution."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from policies.incidents import DEFAULT_RULES, Event, Incident, Rules, Summarised, silence, step

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
CHANNELS = {"myapp": "C_MYAPP", "api": "C_API", "other": "C_MYAPP"}


def channel_of(app: str) -> str | None:
    return CHANNELS.get(app)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def crash(app: str = "myapp", subject: str = "web", second: float = 0, detail: str = "") -> Event:
    return Event(app, "crash", subject, at(second), detail or f"{subject}.1 crashed")


def run(
    events, known=None, now=None, recent=None, rules=DEFAULT_RULES, summaries=None, unobserved=()
):
    known = {i.key: i for i in (known or [])}
    return step(known, events, now or at(60), channel_of, recent, rules, summaries, unobserved)


def kinds(result) -> list[tuple[str, str]]:
    return [(notice.kind, notice.key) for notice in result.notices]


def test_a_crash_loop_of_fifty_events_is_one_incident_and_one_message():
    events = [crash(second=i * 3, detail=f"web.{i % 3 + 1} crashed") for i in range(50)]
    result = run(events, now=at(150))
    [incident] = result.incidents
    assert (incident.key, incident.count, incident.state) == ("crash:myapp:web", 50, "open")
    assert (incident.first_at, incident.last_at) == (at(0), at(147))
    assert kinds(result) == [("post", "crash:myapp:web")]
    [notice] = result.notices
    assert notice.channel == "C_MYAPP"
    assert "50 times since 15:00 UTC" in notice.text and notice.text.endswith("Last: web.2 crashed")


def test_a_condition_seen_on_each_check_says_since_when_not_how_many_times():
    known: list[Incident] = []
    for minute in range(3):  # the watch job sees the same slow minute three times
        event = Event("myapp", "slow", "web p95", at(minute * 60), f"p95 {3 + minute} s")
        result = run([event], known, now=at(minute * 60))
        known = list({i.key: i for i in [*known, *result.incidents]}.values())
    [update] = result.notices
    assert (
        update.text
        == ":warning: *myapp* slow responses on `web p95` since 15:00 UTC (2 min). Last: p95 5 s"
    )
    resolved = run([], known, now=at(120 + 600))
    assert resolved.notices[0].text == (
        ":white_check_mark: Resolved: *myapp* slow responses on `web p95` "
        "between 15:00 UTC and 15:02 UTC."
    )


def test_a_condition_seen_in_one_minute_resolves_at_that_minute_not_between_it_and_itself():
    event = Event("myapp", "errors", "web", at(30), "5xx rate 100 %")
    opened = run([event], now=at(30))
    resolved = run([], list(opened.incidents), now=at(30 + 600))
    assert resolved.notices[0].text == (
        ":white_check_mark: Resolved: *myapp* 5xx responses on `web` at 15:00 UTC."
    )


def test_a_crash_loop_over_many_ticks_posts_once_then_updates_in_place():
    known: list[Incident] = []
    seen: list[tuple[str, str]] = []
    for tick in range(10):
        events = [crash(second=tick * 15 + i) for i in range(5)]
        result = run(events, known=known, now=at(tick * 15 + 5))
        known = list(result.incidents)
        seen += kinds(result)
    assert seen == [("post", "crash:myapp:web")] + [("update", "crash:myapp:web")] * 9
    assert known[0].count == 50


@pytest.mark.parametrize(
    ("events", "expected_keys"),
    [
        ([crash(), crash(subject="worker")], ["crash:myapp:web", "crash:myapp:worker"]),
        ([crash(), crash(app="api")], ["crash:myapp:web", "crash:api:web"]),
        (
            [crash(), Event("myapp", "router_error", "H12", at(1)), crash(second=2)],
            ["crash:myapp:web", "router_error:myapp:H12"],
        ),
        ([crash(), crash(second=1), crash(second=2)], ["crash:myapp:web"]),
    ],
)
def test_events_group_by_kind_app_and_subject(events, expected_keys):
    result = run(events)
    assert [i.key for i in result.incidents] == expected_keys
    assert [n.key for n in result.notices if n.kind == "post"] == expected_keys


@pytest.mark.parametrize(
    ("recent", "new", "posted", "folded"),
    [
        (0, 3, 3, 0),  # under the limit: a message each
        (0, 5, 5, 0),  # exactly the limit
        (0, 8, 5, 3),  # a storm: five messages, and one summary for the rest
        (4, 3, 1, 2),  # earlier posts in the window count
        (5, 2, 0, 2),  # the window is full: only the summary
    ],
)
def test_the_per_channel_rate_limit_folds_a_storm_into_one_summary(recent, new, posted, folded):
    events = [crash(subject=f"p{i}", second=i) for i in range(new)]
    result = run(events, recent={"C_MYAPP": recent}, rules=Rules(channel_limit=5))
    posts = [n for n in result.notices if n.kind == "post"]
    own = [n for n in posts if not n.key.startswith("summary:")]
    summaries = [n for n in posts if n.key.startswith("summary:")]
    assert len(own) == posted
    assert len(summaries) == (1 if folded else 0)
    assert sum(1 for i in result.incidents if i.folded) == folded
    if folded:
        assert summaries[0].text.startswith(f":rotating_light: {folded} more alerts")


def test_the_rate_limit_is_per_channel():
    events = [crash(subject=f"p{i}", second=i) for i in range(3)] + [crash(app="api")]
    result = run(events, recent={"C_MYAPP": 5}, rules=Rules(channel_limit=5))
    assert [(n.channel, n.key) for n in result.notices if n.kind == "post"] == [
        ("C_API", "crash:api:web"),
        ("C_MYAPP", f"summary:C_MYAPP:{at(60).isoformat()}"),
    ]


def test_alerts_folded_later_in_the_window_edit_its_summary_not_post_another():
    # Heroku's webhooks bring a storm one crash per step: each had posted a summary of
    # its own past the limit, twenty messages for twenty crashes.
    first = run([crash(subject="a")], recent={"C_MYAPP": 5}, rules=Rules(channel_limit=5))
    [summary] = first.notices
    assert (summary.kind, summary.names) == ("post", ("crash:myapp:a",))
    assert summary.text.startswith(":rotating_light: 1 more alert in this channel just now: ")
    earlier = {"C_MYAPP": Summarised(summary.key, summary.names)}
    second = run(
        [crash(subject="b", second=20)],
        known=first.incidents,
        now=at(80),
        recent={"C_MYAPP": 6},
        summaries=earlier,
    )
    [edit] = second.notices
    assert (edit.kind, edit.key) == ("update", summary.key)
    assert edit.names == ("crash:myapp:a", "crash:myapp:b")
    assert edit.text == (
        ":rotating_light: 2 more alerts in this channel just now: *myapp* `a` dynos crashed, "
        "*myapp* `b` dynos crashed."
    )


def test_an_incident_that_could_not_be_looked_at_is_not_resolved_by_its_silence():
    red = Event("myapp", "health", "Red", at(0), "Health Severe (Red)")
    [incident] = run([red], now=at(0)).incidents
    later = at(0) + timedelta(minutes=11)
    unread = run([], known=[incident], now=later, unobserved={("myapp", "health")})
    assert unread.incidents == () and unread.notices == ()
    # Another app's unread health holds this one's back in nothing.
    others = run([], known=[incident], now=later, unobserved={("api", "health")})
    assert [i.state for i in others.incidents] == ["resolved"]


def test_an_event_that_comes_past_its_quiet_period_is_reported_once_as_late():
    # Heroku redelivers for days; the bot's web dyno was down overnight. The crash had been
    # posted as new with a Restart button, "at 06:10 UTC" read as today's, and the next
    # tick resolved it: "no new event for 1201 min".
    crashed = datetime(2026, 11, 28, 6, 10, tzinfo=UTC)
    now = crashed + timedelta(hours=20)
    first = run([Event("myapp", "crash", "web", crashed, "web.1 crashed")], now=now)
    [incident] = first.incidents
    assert (incident.state, incident.posted) == ("resolved", True)
    [notice] = first.notices
    assert (notice.kind, notice.text) == (
        "post",
        ":hourglass: Reported late: *myapp* `web` dynos crashed at 06:10 UTC on Sat 28 Nov, "
        "delivered 20 h 0 min after. Nothing newer has come: `/deploy status myapp` shows "
        "how it runs now.",
    )
    # Nothing follows: no resolution, and a second delivery of it is only counted.
    assert run([], known=first.incidents, now=now + timedelta(minutes=1)).notices == ()
    again = run([Event("myapp", "crash", "web", crashed)], known=first.incidents, now=now)
    assert again.notices == () and again.incidents[0].count == 2
    # A crash now, after it, is an alert of its own.
    fresh = run([Event("myapp", "crash", "web", now)], known=first.incidents, now=now)
    assert [n.kind for n in fresh.notices] == ["post"]
    assert fresh.notices[0].text.startswith(":red_circle: *myapp* `web` dynos crashed at")


def test_a_folded_incident_gets_no_updates_of_its_own():
    first = run([crash()], recent={"C_MYAPP": 5}, rules=Rules(channel_limit=5))
    assert first.incidents[0].folded
    later = run([crash(second=30)], known=first.incidents, now=at(61))
    assert later.incidents[0].count == 2 and later.notices == ()


QUIET = Rules(quiet=timedelta(minutes=10))


@pytest.mark.parametrize(
    ("quiet_for", "resolved"),
    [(timedelta(minutes=9, seconds=59), False), (timedelta(minutes=10), True)],
)
def test_an_incident_resolves_after_the_quiet_period(quiet_for, resolved):
    [incident] = run([crash()], now=at(0)).incidents
    result = run([], known=[incident], now=at(0) + quiet_for, rules=QUIET)
    if not resolved:
        assert result.incidents == () and result.notices == ()
        return
    [after] = result.incidents
    assert after.state == "resolved"
    assert kinds(result) == [("update", "crash:myapp:web"), ("reply", "crash:myapp:web")]
    assert result.notices[0].text.startswith(":white_check_mark: Resolved")
    assert "no new event for 10 min" in result.notices[1].text


def test_an_event_long_after_resolution_reopens_with_a_new_message():
    [incident] = run([crash()], now=at(0)).incidents
    [resolved] = run([], known=[incident], now=at(700), rules=QUIET).incidents
    # 10 min of quiet and the 30 min of a comeback after its last event at 15:00.
    result = run([crash(second=2400)], known=[resolved], now=at(2400), rules=QUIET)
    [reopened] = result.incidents
    assert (reopened.state, reopened.count, reopened.first_at) == ("open", 1, at(2400))
    assert kinds(result) == [("post", "crash:myapp:web")] and result.comebacks == ()


def test_an_alert_back_soon_after_resolving_reopens_on_its_own_message():
    # A flapping check (slow for a while, fine for ten minutes, slow again) had posted a
    # new alert, with its buttons, each time it came back: a channel of look-alikes.
    [incident] = run([crash()], now=at(0)).incidents
    [resolved] = run([], known=[incident], now=at(700), rules=QUIET).incidents
    result = run([crash(second=2399)], known=[resolved], now=at(2399), rules=QUIET)
    [reopened] = result.incidents
    assert (reopened.state, reopened.count, reopened.posted) == ("open", 1, True)
    assert result.comebacks == ("crash:myapp:web",)
    assert kinds(result) == [("update", "crash:myapp:web"), ("reply", "crash:myapp:web")]
    edit, reply = result.notices
    assert edit.text.startswith(":red_circle: *myapp* `web` dynos crashed at 15:39 UTC.")
    assert reply.text == (
        "Back at 15:39 UTC, 39 min after its last event before it resolved: this alert is "
        "open again."
    )
    assert not reply.broadcast  # no new message, so the channel's limit is not spent
    # Its next events edit that message, as any open alert's do, and it resolves again.
    then = run([crash(second=2460)], known=result.incidents, now=at(2460), rules=QUIET)
    assert kinds(then) == [("update", "crash:myapp:web")]
    assert "2 times since 15:39 UTC" in then.notices[0].text


def test_a_comeback_worse_than_it_went_is_said_in_the_channel():
    slow = Event("myapp", "slow", "web p95", at(0), "p95 3 s", severity="warning")
    [incident] = run([slow], now=at(0)).incidents
    [resolved] = run([], known=[incident], now=at(700), rules=QUIET).incidents
    worse = replace(slow, at=at(900), severity="critical")
    result = run([worse], known=[resolved], now=at(900), rules=QUIET)
    assert kinds(result) == [("update", "slow:myapp:web p95"), ("reply", "slow:myapp:web p95")]
    assert result.notices[1].broadcast


@pytest.mark.parametrize(
    ("earlier", "notices"),
    [
        pytest.param({"channel": "C_OLD"}, ["post"], id="its message is in another channel"),
        pytest.param({"folded": True}, ["post"], id="it had no message of its own"),
        pytest.param({"posted": False}, ["post"], id="its message never got out"),
        pytest.param({"severity": "info"}, ["post"], id="a notice"),
        # Nobody is told until the silence ends; then it posts (tested above).
        pytest.param({"silenced_until": at(3600)}, [], id="silenced"),
    ],
)
def test_an_alert_back_soon_gets_a_new_message_when_its_old_one_cannot_serve(earlier, notices):
    [incident] = run([crash()], now=at(0)).incidents
    [resolved] = run([], known=[incident], now=at(700), rules=QUIET).incidents
    result = run([crash(second=900)], known=[replace(resolved, **earlier)], now=at(900))
    assert result.comebacks == ()
    assert [n.kind for n in result.notices] == notices


def test_a_late_event_keeps_its_incident_open():
    [incident] = run([crash()], now=at(0)).incidents
    result = run([crash(second=5)], known=[incident], now=at(3600), rules=QUIET)
    assert result.incidents[0].state == "open"


@pytest.mark.parametrize(
    ("silenced_for", "notices"),
    [(None, ["update"]), (timedelta(hours=1), []), (timedelta(seconds=30), ["update", "reply"])],
)
def test_a_silence_keeps_counting_but_tells_nobody_until_it_ends(silenced_for, notices):
    [incident] = run([crash()], now=at(0)).incidents
    if silenced_for is not None:
        incident = silence(incident, at(0) + silenced_for)
    result = run([crash(second=40)], known=[incident], now=at(60))
    assert result.incidents[0].count == 2
    assert [n.kind for n in result.notices] == notices


def test_a_silence_survives_resolution_and_reopening():
    [incident] = run([crash()], now=at(0)).incidents
    incident = silence(incident, at(3 * 3600))
    [resolved] = run([], known=[incident], now=at(700), rules=QUIET).incidents
    result = run([crash(second=800)], known=[resolved], now=at(800), rules=QUIET)
    assert result.incidents[0].silenced_until == at(3 * 3600)
    assert result.notices == ()


def test_an_app_without_a_channel_is_recorded_but_nobody_is_told():
    result = run([crash(app="nochannel")])
    assert [i.key for i in result.incidents] == ["crash:nochannel:web"]
    assert result.notices == ()


def test_severity_comes_from_the_kind_and_only_worsens():
    events = [
        Event("myapp", "health", "Yellow", at(0), severity="warning"),
        Event("myapp", "health", "Yellow", at(1), severity="critical"),
        Event("myapp", "health", "Yellow", at(2), severity="info"),
    ]
    [incident] = run(events).incidents
    assert incident.severity == "critical"
    assert run([Event("myapp", "router_error", "H12", at(0))]).incidents[0].severity == "warning"


def test_a_release_notice_is_posted_and_closes_without_a_resolved_message():
    release = Event("myapp", "release", "release", at(0), "v42 Deploy abc1234 by dev@example.com")
    [incident] = (opened := run([release], now=at(0))).incidents
    assert incident.severity == "info"
    assert kinds(opened) == [("post", "release:myapp:release")]
    # The version had been plain "v42", where every other reply names a release in code.
    assert "released" in opened.notices[0].text
    assert "Last: `v42` Deploy abc1234" in opened.notices[0].text
    closed = run([], known=[incident], now=at(0) + timedelta(minutes=10), rules=QUIET)
    assert [i.state for i in closed.incidents] == ["resolved"] and closed.notices == ()


def test_a_failed_release_names_its_version_in_code_and_escapes_the_rest():
    failed = Event("myapp", "release_failed", "release", at(0), "v4 failed <!channel> `x`")
    [notice] = run([failed], now=at(0)).notices
    assert "Last: `v4` failed &lt;!channel&gt; ˋxˋ" in notice.text
    # A detail not led by a version is escaped whole: no code span from outside words.
    other = Event("myapp", "release", "release", at(0), "`v4` <!here>")
    assert "Last: ˋv4ˋ &lt;!here&gt;" in run([other], now=at(0)).notices[0].text


class _Key(str):
    """An incident key that counts how often it is compared with another."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Key.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class _CountedEvent(Event):
    @property
    def key(self) -> str:
        return _Key(super().key)


def test_a_storm_across_a_fleet_is_folded_in_linear_time():
    # A step looked each event's key up in lists of the keys opened and grown so far: a
    # thousand apps' open incidents growing at once compared keys 500,000 times (5,000
    # incidents: 0.8 s holding the incidents lock; 20,000: 4.2 s).
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    apps = [f"app-{i:04d}" for i in range(1000)]
    opened = step(
        {}, [_CountedEvent(app, "crash", "web", now) for app in apps], now, lambda a: "C1"
    )
    known = {incident.key: incident for incident in opened.incidents}
    later = now + timedelta(seconds=30)
    _Key.compared = 0
    grown = step(
        known, [_CountedEvent(a, "crash", "web", later) for a in apps], later, lambda a: "C1"
    )
    # The channel's first few have messages to update; the rest were folded in the storm.
    assert len([n for n in grown.notices if n.kind == "update"]) == DEFAULT_RULES.channel_limit
    assert all(incident.count == 2 for incident in grown.incidents)
    assert _Key.compared <= 10 * len(apps)  # a few lookups an event, not one per key so far


def test_an_incident_that_resolves_while_silenced_reads_resolved_without_a_word_in_its_thread():
    # Its message had kept "crashed" and its buttons for good: the silence dropped the edit.
    [incident] = run([crash()], now=at(0)).incidents
    incident = silence(incident, at(3600))
    result = run([], known=[incident], now=at(700), rules=QUIET)
    assert result.incidents[0].state == "resolved"
    assert kinds(result) == [("update", "crash:myapp:web")]
    assert result.notices[0].text.startswith(":white_check_mark: Resolved")


def test_an_incident_reopened_while_silenced_posts_a_message_of_its_own_when_heard_again():
    # Reopened under a silence it got no message; once the silence ended, its next event
    # had edited the old resolved message back to "crashed", far up the channel.
    [incident] = run([crash()], now=at(0)).incidents
    incident = silence(incident, at(3600))
    [resolved] = run([], known=[incident], now=at(700), rules=QUIET).incidents
    quiet = run([crash(second=800)], known=[resolved], now=at(800), rules=QUIET)
    assert quiet.notices == ()
    heard = run([crash(second=3700)], known=quiet.incidents, now=at(3700), rules=QUIET)
    assert kinds(heard) == [("post", "crash:myapp:web")]
    assert "2 times since 15:13 UTC" in heard.notices[0].text
    then = run([crash(second=3710)], known=heard.incidents, now=at(3710), rules=QUIET)
    assert kinds(then) == [("update", "crash:myapp:web")]
    # Resolving without ever having been heard: nothing to edit, nobody to tell.
    [silent] = quiet.incidents
    assert run([], known=[silent], now=at(1500), rules=QUIET).notices == ()


def test_a_late_delivery_of_an_event_a_resolved_incident_covered_is_counted_not_posted():
    # Heroku redelivers for days: a crash from before the resolution, arriving after it,
    # had reopened the incident as a new alert ("crashed at 15:05"), resolved a tick later.
    [incident] = run([crash()], now=at(0)).incidents
    [resolved] = run([], known=[incident], now=at(700), rules=QUIET).incidents
    late = run([crash(second=300)], known=[resolved], now=at(1000), rules=QUIET)
    assert late.notices == ()
    [counted] = late.incidents
    assert (counted.state, counted.count, counted.last_at) == ("resolved", 2, at(300))
    # One still within its quiet period when it arrives is news: the incident reopens, on
    # its own message since it resolved minutes ago.
    fresh = run([crash(second=650)], known=[resolved], now=at(1000), rules=QUIET)
    assert kinds(fresh) == [("update", "crash:myapp:web"), ("reply", "crash:myapp:web")]


def test_a_crash_loop_still_going_when_its_silence_ends_is_said_again_in_the_channel():
    # Its message had only been edited when the hour ended (an edit notifies nobody): the
    # team that silenced it for an hour never heard that it went on.
    [incident] = run([crash()], now=at(0)).incidents
    incident = silence(incident, at(3600))
    known = [incident]
    for second in range(300, 3600, 300):
        quiet = run([crash(second=second)], known=known, now=at(second), rules=QUIET)
        assert quiet.notices == ()
        known = list(quiet.incidents)
    heard = run([crash(second=3700)], known=known, now=at(3700), rules=QUIET)
    assert kinds(heard) == [("update", "crash:myapp:web"), ("reply", "crash:myapp:web")]
    said = heard.notices[1]
    assert said.broadcast and said.channel == "C_MYAPP"
    assert "13 times since 15:00 UTC" in said.text
    assert "silence ended at 16:00 UTC" in said.text
    # Said once: the crashes after it edit the message as before.
    then = run([crash(second=3800)], known=heard.incidents, now=at(3800), rules=QUIET)
    assert kinds(then) == [("update", "crash:myapp:web")]
    assert not then.notices[0].broadcast


def test_a_second_worker_type_held_by_the_same_unread_endpoint_updates_the_one_alert():
    # One endpoint down: `worker` held for 10 min is an alert; `mailer` (turned on later)
    # reaches its 10 min while that is open. One cause, one alert: its message is updated
    # to name both, not a second alert posted beside it (and the first "resolved").
    down = "could not read the job queue (timed out)."
    first = Event("myapp", "queue_unread", "worker", at(0), down)
    opened = run([first], now=at(0))
    [incident] = opened.incidents
    both = Event("myapp", "queue_unread", "mailer, worker", at(60), down)
    result = run([both], [incident], now=at(60))
    assert kinds(result) == [("update", "queue_unread:myapp:worker")]
    [grown] = result.incidents
    assert (grown.subject, grown.count, grown.state) == ("mailer, worker", 2, "open")
    assert "job queue unread for `mailer`, `worker` since 15:00 UTC" in result.notices[0].text
    # `worker` read again, `mailer` still not: the same alert goes on.
    later = run([Event("myapp", "queue_unread", "mailer", at(120), down)], [grown], now=at(120))
    assert kinds(later) == [("update", "queue_unread:myapp:worker")]


def test_a_beanstalk_environment_going_from_yellow_to_red_is_one_alert_that_says_it_worsened():
    # One environment, one health: Yellow then Red had been two alerts, and ten minutes
    # into the Red one the Yellow one said "Resolved" while the environment was down.
    yellow = Event("myapp", "health", "Yellow", at(0), "Health Degraded (Yellow)", "warning")
    [incident] = run([yellow], now=at(0)).incidents
    red = Event("myapp", "health", "Red", at(60), "Health Severe (Red)", "critical")
    worse = run([red], [incident], now=at(60))
    assert kinds(worse) == [("update", "health:myapp:Yellow"), ("reply", "health:myapp:Yellow")]
    [grown] = worse.incidents
    assert (grown.subject, grown.severity) == ("Red", "critical")
    update, reply = worse.notices
    assert update.text.startswith(":red_circle: *myapp* health turned `Red` since 15:00 UTC")
    assert reply.broadcast and "It got worse" in reply.text  # an edit notifies nobody
    # Red for eleven minutes more: nothing says it resolved.
    known = grown
    for minute in range(2, 13):
        red = Event("myapp", "health", "Red", at(minute * 60), "Health Severe (Red)", "critical")
        result = run([red], [known], now=at(minute * 60))
        assert [n.kind for n in result.notices] == ["update"]
        [known] = result.incidents
    assert known.state == "open" and known.key == "health:myapp:Yellow"


def test_a_fleets_health_alerts_are_folded_looking_at_their_own_app_only(monkeypatch):
    # Each health event looked for its app's open health alert among every incident known:
    # 2,000 Red environments took 0.5 s a tick holding the incidents lock.
    import policies.incidents as incidents

    looked: list[int] = []
    home = incidents._home

    def counted(event, candidates, claimed):
        looked.append(len(candidates))
        return home(event, candidates, claimed)

    apps = [f"env-{i:04d}" for i in range(500)]
    opened = step({}, [Event(a, "health", "Red", T0) for a in apps], T0, lambda a: "C1")
    known = {incident.key: incident for incident in opened.incidents}
    monkeypatch.setattr(incidents, "_home", counted)
    later = T0 + timedelta(minutes=1)
    grown = step(known, [Event(a, "health", "Red", later) for a in apps], later, lambda a: "C1")
    assert all(incident.count == 2 for incident in grown.incidents)
    assert sum(looked) <= len(apps)  # its own app's one alert, not every app's


def test_an_alert_of_an_app_taken_out_of_the_registry_closes_saying_so_not_resolved():
    opened = run([crash("gone")], now=at(0), recent=None)
    [incident] = opened.incidents
    incident = replace(incident, channel="C_GONE", posted=True)
    # The next tick, `gone` is no longer listed: nobody watches it, so no quiet will say
    # the trouble is over, and "Resolved" would be a guess.
    closed = run([], [incident], now=at(60))
    [after] = closed.incidents
    assert after.state == "resolved"
    assert [(n.kind, n.channel) for n in closed.notices] == [
        ("update", "C_GONE"),
        ("reply", "C_GONE"),
    ]
    update, reply = closed.notices
    assert update.text == (
        ":heavy_minus_sign: Closed: *gone* `web` dynos crashed at 15:00 UTC. "
        "Alerts about it no longer come to this channel."
    )
    assert reply.text == (
        "Closed without knowing how it ended: the registry no longer lists `gone` with "
        "this channel for alerts, so the bot stopped following it here."
    )


def test_an_alert_of_an_app_given_another_channel_closes_here_and_opens_there():
    CHANNELS["moved"] = "C0NEW"
    try:
        opened = run([crash("moved")], now=at(0))
        [incident] = opened.incidents
        incident = replace(incident, channel="C_OLD")
        result = run([crash("moved", second=60)], [incident], now=at(60))
    finally:
        del CHANNELS["moved"]
    [after] = result.incidents
    assert (after.state, after.channel, after.count) == ("open", "C0NEW", 1)
    assert [(n.kind, n.channel) for n in result.notices] == [
        ("update", "C_OLD"),
        ("reply", "C_OLD"),
        ("post", "C0NEW"),
    ]
    assert result.notices[1].text == (
        "Closed without knowing how it ended: the registry no longer lists `moved` with "
        "this channel for alerts, so the bot stopped following it here. "
        "Its alerts go to <#C0NEW> now."
    )


def test_a_silenced_alert_of_an_app_taken_out_closes_without_a_word_in_its_thread():
    opened = run([crash("gone")], now=at(0))
    [incident] = opened.incidents
    incident = silence(replace(incident, channel="C_GONE", posted=True), at(3600))
    closed = run([], [incident], now=at(60))
    assert [(n.kind, n.channel) for n in closed.notices] == [("update", "C_GONE")]
