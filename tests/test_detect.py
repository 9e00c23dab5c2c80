"""bot.worker.detectors: the detectors over the real stores (SQLite, and PostgreSQL when set) and the
fake Beanstalk over boto3, then into `Alerts.record` the way the worker's watch tick will."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.metrics.aggregate import Window
from bot.metrics.store import MetricsStore
from bot.services import Services
from bot.store.autoscale_settings import AutoscaleStore, Decision, Settings
from bot.store.drains import Drains
from bot.store.incidents import Alerts
from bot.store.worker_autoscale_settings import WorkerAutoscaleStore, WorkerSettings
from bot.worker.detectors import Detectors, minutes_of
from policies.sketch import Sketch
from policies.slack_text import escape
from policies.worker_autoscale import unread_reason
from tests.conftest import ADMIN
from tests.test_beanstalk import REGISTRY, aws  # noqa: F401  (the fixture)

# 30 s into a minute: the newest complete minute began at 12:00.
NOW = datetime(2026, 11, 29, 12, 1, 30, tzinfo=UTC)
HEROKU_REGISTRY = """\
apps:
  myapp:
    platform: heroku
    channel: CMYAPP
  other:
    platform: heroku
    app: other-app
"""


def windows(
    app: str,
    minutes: int,
    requests: int = 60,
    service_ms: float = 100.0,
    errors: int = 0,
    codes: dict[str, int] | None = None,
    until: datetime = NOW,
) -> list[Window]:
    """Six 10 s windows per minute for the `minutes` whole minutes before `until`'s minute;
    `requests`, `errors` and `codes` are per minute."""
    end = int(until.timestamp()) // 60 * 60
    out = []
    for start in range(end - minutes * 60, end, 10):
        sketch = Sketch()
        sketch.add(service_ms, requests // 6)
        first = start % 60 == 0  # errors and codes all in the minute's first window
        out.append(
            Window(
                app=app,
                start=start,
                requests=requests // 6,
                statuses={"2xx": requests // 6 - (errors if first else 0)}
                | ({"5xx": errors} if first and errors else {}),
                codes=dict(codes or {}) if first else {},
                dynos={"web.1": requests // 6},
                service=sketch,
            )
        )
    return out


def services_with(config, tmp_path, monkeypatch, registry: str) -> Services:
    path = tmp_path / "deploybot.yml"
    path.write_text(registry)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    services = Services(config)
    services.migrate_sqlite_if_behind()
    return services


@pytest.fixture
def services(config, tmp_path, monkeypatch) -> Services:
    return services_with(config, tmp_path, monkeypatch, HEROKU_REGISTRY)


def keys(events) -> list[str]:
    return sorted(e.key for e in events)


def test_quiet_healthy_traffic_and_no_traffic_give_no_events(services):
    MetricsStore(services.db).save(windows("myapp", 10))
    assert Detectors.from_services(services).run(NOW) == []


def test_slow_errors_and_router_bursts_from_stored_windows(services):
    store = MetricsStore(services.db)
    store.save(windows("myapp", 4, requests=120, service_ms=2600, errors=12, codes={"H12": 11}))
    store.save(windows("other", 4, requests=120, codes={"H12": 9}))  # under the burst
    events = Detectors.from_services(services).run(NOW)
    assert keys(events) == ["errors:myapp:web", "router_error:myapp:H12", "slow:myapp:web p95"]
    by_kind = {e.kind: e for e in events}
    assert by_kind["slow"].detail == "p95 service 2.6 s > 2 s."
    assert by_kind["errors"].detail == "5xx rate 10 % (12 of 120) > 5 %."
    assert all(e.at == NOW for e in events)


def test_windows_written_in_parts_are_merged_before_judging(services):
    # Two web dynos each flushed half of every window: together they are slow and failing.
    halves = windows("myapp", 3, requests=60, service_ms=2500, errors=6)
    store = MetricsStore(services.db)
    store.save(halves)
    store.save(halves)
    events = Detectors.from_services(services).run(NOW)
    assert keys(events) == ["errors:myapp:web", "slow:myapp:web p95"]
    [errors] = [e for e in events if e.kind == "errors"]
    assert "(12 of 120)" in errors.detail


def test_minutes_of_merges_sketches_not_percentiles():
    fast, slow = Sketch(), Sketch()
    fast.add(100.0, 95)
    slow.add(5000.0, 5)
    start = int(NOW.timestamp()) // 60 * 60
    [minute] = minutes_of(
        [
            Window("myapp", start, requests=95, service=fast, statuses={"2xx": 95}),
            Window("myapp", start + 10, requests=5, service=slow, statuses={"5xx": 5}),
        ]
    )
    assert (minute.requests, minute.errors) == (100, 5)
    assert minute.service_p95_ms == pytest.approx(100.0, rel=0.02)  # 95 of 100 were fast


def test_a_drain_that_never_delivered_in_an_hour_is_stale(services):
    drains = Drains(services.db)
    drains.get_or_create("myapp", "https://bot.example", ADMIN, NOW - timedelta(minutes=59))
    detectors = Detectors.from_services(services)
    assert detectors.run(NOW) == []  # an app may be idle for a while
    [event] = detectors.run(NOW + timedelta(minutes=1))
    assert (event.key, event.detail) == (
        "stale:myapp:traffic",
        "No traffic window has arrived in the 60 min since it was expected.",
    )
    MetricsStore(services.db).save(windows("myapp", 1))
    assert detectors.run(NOW + timedelta(minutes=1)) == []


def test_a_window_dated_in_the_future_does_not_hide_a_silent_drain(services):
    # Anyone holding the drain's URL can post a line dated 2099: that window must not read
    # as the newest traffic, or the drain would never look stale again.
    drains = Drains(services.db)
    drains.get_or_create("myapp", "https://bot.example", ADMIN, NOW - timedelta(minutes=59))
    MetricsStore(services.db).save(windows("myapp", 1, until=datetime(2099, 1, 1, tzinfo=UTC)))
    [event] = Detectors.from_services(services).run(NOW + timedelta(minutes=1))
    assert (event.key, event.detail) == (
        "stale:myapp:traffic",
        "No traffic window has arrived in the 60 min since it was expected.",
    )


def test_an_idle_drained_app_is_not_stale_but_an_autoscaled_one_is(services):
    Drains(services.db).get_or_create(
        "myapp", "https://bot.example", ADMIN, NOW - timedelta(hours=2)
    )
    # Windows from before the lookback of 15 minutes: then the night was quiet.
    MetricsStore(services.db).save(windows("myapp", 1, until=NOW - timedelta(minutes=30)))
    detectors = Detectors.from_services(services)
    assert detectors.run(NOW) == []
    # Autoscaling needs the windows: now their real age is reported.
    AutoscaleStore(services.db).save(
        Settings("myapp", "on", 1, 4, "service_p95", 500.0, ADMIN, NOW - timedelta(hours=1))
    )
    [event] = detectors.run(NOW)
    assert event.key == "stale:myapp:traffic"
    assert event.detail == "The newest traffic window ended 30 min ago at 11:31 UTC, limit 5 min."
    # Once the autoscaler runs it at its min, the quiet costs nothing: no alert.
    autoscale = AutoscaleStore(services.db)
    autoscale.record(Decision("myapp", NOW, 3, 3, False, "stale", 3))
    assert keys(detectors.run(NOW)) == ["stale:myapp:traffic"]  # held at 3, above min 1
    autoscale.record(Decision("myapp", NOW, 1, 1, False, "stale", 1))
    assert detectors.run(NOW) == []
    MetricsStore(services.db).save(windows("myapp", 1))
    assert detectors.run(NOW) == []


def record_ticks(store: AutoscaleStore, app: str, desired: int, minutes: int) -> None:
    for i in range(minutes * 4 + 1):
        at = NOW - timedelta(seconds=15 * i)
        store.record(Decision(app, at, desired, desired, False, "test", desired))


def test_autoscaler_pinned_at_max_for_ten_minutes(services):
    autoscale = AutoscaleStore(services.db)
    autoscale.save(
        Settings("myapp", "on", 1, 4, "service_p95", 500.0, ADMIN, NOW - timedelta(hours=1))
    )
    MetricsStore(services.db).save(windows("myapp", 10))
    record_ticks(autoscale, "myapp", 4, minutes=9)
    detectors = Detectors.from_services(services)
    assert detectors.run(NOW) == []  # nine minutes only
    record_ticks(autoscale, "myapp", 4, minutes=10)
    [event] = detectors.run(NOW)
    assert event.key == "pinned:myapp:web"
    assert event.detail == "The autoscaler wants its max of 4 web."


def test_an_unlisted_autoscaled_app_is_watched_too(services, caplog):
    # Not in the registry (reached through allow_unlisted): no metrics for an hour.
    AutoscaleStore(services.db).save(
        Settings("unlisted-app", "on", 1, 4, "service_p95", 500.0, ADMIN, NOW - timedelta(hours=1))
    )
    with caplog.at_level(logging.WARNING, logger="bot.worker.detectors"):
        assert keys(Detectors.from_services(services).run(NOW)) == ["stale:unlisted-app:traffic"]
    # Nothing to complain about: it simply has no health. (Only the detectors' own records:
    # a thread an earlier test left behind may log to the root logger meanwhile, as one
    # posting to that test's stopped fake Slack did in a CI run.)
    assert [r for r in caplog.records if r.name.startswith("bot.")] == []


def test_autoscaling_off_expects_no_metrics(services):
    AutoscaleStore(services.db).save(
        Settings("myapp", "off", 1, 4, "service_p95", 500.0, ADMIN, NOW - timedelta(hours=1))
    )
    assert Detectors.from_services(services).run(NOW) == []


def test_events_become_one_incident_each_and_resolve_when_the_condition_stops(services):
    store = MetricsStore(services.db)
    store.save(windows("myapp", 4, requests=120, service_ms=2600))
    detectors, alerts = Detectors.from_services(services), Alerts(services.db)
    for tick in range(3):  # the condition holds for three ticks: one incident
        now = NOW + timedelta(seconds=tick)
        alerts.record(detectors.run(now), now, services.registry.channel_of)
    [incident] = alerts.incidents("myapp")
    assert (incident.key, incident.state, incident.count) == ("slow:myapp:web p95", "open", 3)
    assert incident.channel == "CMYAPP"
    later = NOW + timedelta(minutes=12)  # no slow minutes since: quiet past Rules.quiet
    step = alerts.record(detectors.run(later), later, services.registry.channel_of)
    assert [(i.key, i.state) for i in step.incidents] == [("slow:myapp:web p95", "resolved")]


# -- Beanstalk health through boto3 and the fake --------------------------------------------


def test_beanstalk_green_to_red_is_a_health_event_with_causes(
    config,
    aws,  # noqa: F811
    tmp_path,
    monkeypatch,
    caplog,
):
    services = services_with(config, tmp_path, monkeypatch, REGISTRY)
    detectors = Detectors.from_services(services)
    with caplog.at_level(logging.WARNING, logger="bot.worker.detectors"):
        assert detectors.run(NOW) == []  # both environments Green
    # `lost` names an AWS profile the bot lacks: logged, and the run went on.
    assert [r.app for r in caplog.records if r.msg == "beanstalk health not read"] == ["lost"]
    before = len(aws.calls("DescribeEnvironmentHealth"))

    aws.set_health(
        "shop-prod",
        region="us-east-1",
        color="Red",
        health_status="Severe",
        causes=["100.0 % of the requests are failing with HTTP 5xx.", "ELB health is failing."],
    )
    events = detectors.run(NOW)
    [event] = events
    assert (event.key, event.severity) == ("health:shop:Red", "critical")
    assert event.detail == (
        "Health Severe (Red), 2 causes: 100.0 % of the requests are failing with HTTP 5xx; "
        "ELB health is failing."
    )
    # One describe call per reachable Beanstalk app per run, nothing else.
    assert len(aws.calls("DescribeEnvironmentHealth")) - before == 2
    assert aws.violations == []

    alerts = Alerts(services.db)
    alerts.record(events, NOW, services.registry.channel_of)
    aws.set_health("shop-prod", region="us-east-1", color="Green", health_status="Ok", causes=[])
    assert detectors.run(NOW + timedelta(minutes=1)) == []
    later = NOW + timedelta(minutes=11)
    step = alerts.record(detectors.run(later), later, services.registry.channel_of)
    assert [(i.key, i.state) for i in step.incidents] == [("health:shop:Red", "resolved")]


def test_a_failing_beanstalk_call_is_logged_not_raised(
    config,
    aws,  # noqa: F811
    tmp_path,
    monkeypatch,
    caplog,
):
    services = services_with(config, tmp_path, monkeypatch, REGISTRY)
    MetricsStore(services.db).save(windows("shop", 4, requests=120, service_ms=3000))
    # Not a retried error (AWS would retry a 503 with backoff, slowly): refused credentials.
    aws.fail_next(403, "AccessDenied", count=2, actions=["DescribeEnvironmentHealth"])
    with caplog.at_level(logging.WARNING, logger="bot.worker.detectors"):
        events = Detectors.from_services(services).run(NOW)
    # Health could not be read, but the traffic detectors still ran for the app.
    assert keys(events) == ["slow:shop:web p95"]
    failed = {r.app for r in caplog.records if r.msg == "beanstalk health not read"}
    assert failed == {"shop", "shop-eu", "lost"}


def test_a_red_environment_stays_open_while_its_health_cannot_be_read(
    config,
    aws,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from bot.worker.main import Worker

    registry = REGISTRY.replace(
        "    environment: shop-prod\n", "    environment: shop-prod\n    channel: CSHOP\n"
    )
    services_with(config, tmp_path, monkeypatch, registry).db.dispose()
    worker = Worker(config)
    aws.set_health("shop-prod", region="us-east-1", color="Red", health_status="Severe")

    def shop() -> list[tuple[str, str]]:
        rows = worker.alerts.outbox.entries()
        return [(e.kind, e.payload["text"][:40]) for e in rows if e.channel == "CSHOP"]

    assert worker.watch(NOW) == 1
    assert shop() == [("post", ":red_circle: *shop* health turned `Red` ")]
    # AWS refuses the read for eleven minutes (an outage, a key being rotated) while the
    # environment stays Red: it had been posted "Resolved", then alerted again as new.
    for minute in range(1, 12):
        # Two reads a run: `shop` and `shop-eu` (`lost` has no credentials at all).
        aws.fail_next(403, "AccessDenied", count=2, actions=["DescribeEnvironmentHealth"])
        worker.watch(NOW + timedelta(minutes=minute))
    assert [kind for kind, _ in shop()] == ["post"]
    worker.watch(NOW + timedelta(minutes=12))  # read again: still Red, the same alert
    assert [kind for kind, _ in shop()] == ["post", "update"]
    assert ":white_check_mark: Resolved" not in shop()[-1][1]
    # Read again and Green: ten quiet minutes after the last Red seen, it resolves.
    aws.set_health("shop-prod", region="us-east-1", color="Green", health_status="Ok", causes=[])
    worker.watch(NOW + timedelta(minutes=22))
    # (The queued edit gives way to the newer one: a message's newest state is what counts.)
    assert [kind for kind, _ in shop()] == ["post", "update", "reply"]
    assert shop()[1][1].startswith(":white_check_mark: Resolved")


def test_an_apps_own_alert_thresholds_from_the_registry(config, tmp_path, monkeypatch):
    registry = HEROKU_REGISTRY.replace(
        "    channel: CMYAPP\n",
        "    channel: CMYAPP\n    alerts:\n      slow_p95_ms: 500\n      router_burst: 50\n",
    )
    services = services_with(config, tmp_path, monkeypatch, registry)
    store = MetricsStore(services.db)
    # 800 ms and 20 H12s a minute: slow for myapp's own limit, not for the default 2 s;
    # 20 H12s are a burst by default, not by myapp's 50.
    store.save(windows("myapp", 4, requests=120, service_ms=800, codes={"H12": 20}))
    store.save(windows("other", 4, requests=120, service_ms=800, codes={"H12": 20}))
    events = Detectors.from_services(services).run(NOW)
    assert keys(events) == ["router_error:other:H12", "slow:myapp:web p95"]


def test_pinned_at_a_schedule_windows_max(config, tmp_path, monkeypatch):
    registry = HEROKU_REGISTRY.replace(
        "    channel: CMYAPP\n",
        "    channel: CMYAPP\n    autoscale:\n      schedule:\n        - from: '00:00'\n"
        "          to: '00:00'\n          max: 2\n",
    )
    services = services_with(config, tmp_path, monkeypatch, registry)
    autoscale = AutoscaleStore(services.db)
    autoscale.save(
        Settings("myapp", "on", 1, 6, "service_p95", 500.0, ADMIN, NOW - timedelta(hours=1))
    )
    MetricsStore(services.db).save(windows("myapp", 10))
    record_ticks(autoscale, "myapp", 2, minutes=10)  # the window's max, not the settings' 6
    [event] = Detectors.from_services(services).run(NOW)
    assert event.detail == "The autoscaler wants its max of 2 web."


def test_pinned_at_a_chat_schedule_windows_max(config, tmp_path, monkeypatch):
    from bot.store.autoscale_overrides import OverrideStore

    services = services_with(config, tmp_path, monkeypatch, HEROKU_REGISTRY)
    autoscale = AutoscaleStore(services.db)
    autoscale.save(
        Settings("myapp", "on", 1, 4, "service_p95", 500.0, ADMIN, NOW - timedelta(hours=1))
    )
    # `/deploy autoscale myapp schedule add daily 00:00-00:00 min=2 max=8`: all day, up to 8.
    window = {"days": "daily", "start": "00:00", "end": "00:00", "min": "2", "max": "8"}
    OverrideStore(services.db).put_windows("myapp", [window], ADMIN, NOW - timedelta(hours=1))
    MetricsStore(services.db).save(windows("myapp", 10))
    detectors = Detectors.from_services(services)
    # 6 is within the window's max of 8, which the autoscaler works to: not "at its max of 4".
    record_ticks(autoscale, "myapp", 6, minutes=10)
    assert detectors.run(NOW) == []
    window["max"] = "6"
    OverrideStore(services.db).put_windows("myapp", [window], ADMIN, NOW - timedelta(hours=1))
    [event] = detectors.run(NOW)
    assert event.detail == "The autoscaler wants its max of 6 web."


FLEET = [f"app-{i:02d}" for i in range(40)]


def autoscaled_fleet(config, tmp_path, monkeypatch) -> Services:
    """Services on a registry of the FLEET, each app autoscaled (web 1-4) for an hour."""
    fleet = "apps:\n" + "".join(f"  {app}:\n    platform: heroku\n" for app in FLEET)
    services = services_with(config, tmp_path, monkeypatch, fleet)
    for app in FLEET:
        AutoscaleStore(services.db).save(
            Settings(app, "on", 1, 4, "service_p95", 500.0, ADMIN, NOW - timedelta(hours=1))
        )
    return services


def statements_of(services: Services) -> list[str]:
    """The SQL statements `services`' database runs from now on, as they run."""
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(
        services.db.engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *args: statements.append(sql),
    )
    return statements


def test_a_fleets_detectors_read_the_database_a_few_times_not_per_app(
    config, tmp_path, monkeypatch
):
    services = autoscaled_fleet(config, tmp_path, monkeypatch)
    autoscale, store = AutoscaleStore(services.db), MetricsStore(services.db)
    for i, app in enumerate(FLEET):
        store.save(windows(app, 4, requests=120, service_ms=2600 if i == 7 else 100))
    record_ticks(autoscale, "app-03", 4, minutes=10)  # at its max for ten minutes
    record_ticks(autoscale, "app-05", 1, minutes=1)  # at its min
    statements = statements_of(services)
    events = Detectors.from_services(services).run(NOW)
    assert keys(events) == ["pinned:app-03:web", "slow:app-07:web p95"]
    # The worker's watch, each minute: a windows query and one or two decisions queries
    # per app had been 3,000 statements (3.2 s on SQLite) at a thousand apps. Now seven, the
    # same for any fleet: web and worker settings, drains, windows, recent and latest
    # decisions, chat's autoscale overrides (schedule windows).
    assert len(statements) <= 7


def test_a_fleets_job_queue_reads_are_one_query_not_one_an_app(config, tmp_path, monkeypatch):
    services = autoscaled_fleet(config, tmp_path, monkeypatch)
    workers, autoscale = WorkerAutoscaleStore(services.db), AutoscaleStore(services.db)
    for app in FLEET:
        start = NOW - timedelta(hours=1)
        workers.save(WorkerSettings(app, "worker", "on", 0, 4, "jobs", 50.0, ADMIN, start))
        MetricsStore(services.db).save(windows(app, 4, requests=120))
    # app-09's endpoint has not answered for 11 minutes of ticks; the others' have.
    for tick in range(45):
        at = NOW - timedelta(seconds=15 * tick)
        autoscale.record(Decision(at=at, **_worker_tick("app-09", unread=True)))
        autoscale.record(Decision(at=at, **_worker_tick("app-10", unread=False)))
    statements = statements_of(services)
    events = Detectors.from_services(services).run(NOW)
    assert keys(events) == ["queue_unread:app-09:worker"]
    # One query an app with a worker type had been 1,000 a minute at a thousand apps; now
    # one for them all, beside the others.
    assert len(statements) <= 8


def _worker_tick(app: str, unread: bool) -> dict[str, object]:
    reason = unread_reason("the app's HireFire endpoint answered 500", "worker", 1)
    return {
        "app": app,
        "actual": 1,
        "desired": 1,
        "acted": False,
        "reason": escape(reason) if unread else "worker stays at 1",
        "recommendation": 1,
        "process_type": "worker",
    }


def test_a_fleets_stale_apps_ages_are_read_in_one_query_not_one_each(config, tmp_path, monkeypatch):
    services = autoscaled_fleet(config, tmp_path, monkeypatch)
    for i, app in enumerate(FLEET):
        # Every app's traffic stopped 30 + i minutes ago, before the lookback.
        MetricsStore(services.db).save(windows(app, 1, until=NOW - timedelta(minutes=30 + i)))
        AutoscaleStore(services.db).record(Decision(app, NOW, 3, 3, False, "stale", 3))
        Drains(services.db).get_or_create(app, "https://bot.example", ADMIN, NOW)
    statements = statements_of(services)
    events = Detectors.from_services(services).run(NOW)
    assert keys(events) == [f"stale:{app}:traffic" for app in FLEET]  # each above its min
    assert events[0].detail == (
        "The newest traffic window ended 30 min ago at 11:31 UTC, limit 5 min."
    )
    assert events[20].detail.startswith("The newest traffic window ended 50 min ago")
    # How old each stale app's newest window is had been one query an app: 40 here, a
    # thousand a minute when a fleet's traffic stops.
    assert len([sql for sql in statements if "max(metric_windows.start" in sql]) == 1
    assert len(statements) <= 7


def test_an_hour_long_outage_says_since_when_it_began_and_how_long_not_14_min(services):
    """The detectors look back a quarter of an hour only: "For 14 min" (and "wanted its max
    of 4 web for 14 min") had stayed so however long the trouble lasted, under a "since"
    ten minutes after it began."""
    workers, autoscale = WorkerAutoscaleStore(services.db), AutoscaleStore(services.db)
    start = NOW - timedelta(hours=1)
    workers.save(WorkerSettings("myapp", "worker", "on", 0, 4, "jobs", 50.0, ADMIN, start))
    autoscale.save(Settings("myapp", "on", 1, 4, "service_p95", 500.0, ADMIN, start))
    detectors, alerts = Detectors.from_services(services), Alerts(services.db)
    began = NOW.replace(second=0)  # 12:01
    for minute in range(61):
        for tick in range(4):
            at = began + timedelta(minutes=minute, seconds=15 * tick)
            autoscale.record(Decision(at=at, **_worker_tick("myapp", unread=True)))
            autoscale.record(Decision("myapp", at, 4, 4, False, "test", 4))
            MetricsStore(services.db).save(windows("myapp", 1, until=at + timedelta(minutes=1)))
        now = began + timedelta(minutes=minute, seconds=50)
        alerts.record(detectors.run(now), now, services.registry.channel_of)
    listed = alerts.open_text("myapp", now)
    assert (
        "*myapp* job queue unread for `worker` since 12:01 UTC (1 h 0 min). Last: could not "
        "read the job queue (the app's HireFire endpoint answered 500): worker stays at 1."
    ) in listed
    assert "*myapp* autoscaler pinned at max for `web` since 12:01 UTC (1 h 0 min)." in listed
    assert "14 min" not in listed


def test_a_late_event_that_moves_an_incident_s_start_earlier_moves_its_past_opening_too(services):
    # A crash webhook Heroku delivered late (a retry) moves the incident's start back; the
    # opening a past day's digest and chart read had kept the first sighting's time.
    from policies.incidents import Event

    alerts = Alerts(services.db)
    alerts.record([Event("myapp", "crash", "web", NOW)], NOW, lambda app: None)
    earlier = NOW - timedelta(minutes=3)
    later = NOW + timedelta(seconds=30)
    alerts.record([Event("myapp", "crash", "web", earlier)], later, lambda app: None)
    [opening] = alerts.openings("myapp", NOW - timedelta(hours=1), later)
    assert opening.opened_at.replace(tzinfo=UTC) == earlier
