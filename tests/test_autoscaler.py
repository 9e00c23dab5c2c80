"""The autoscale tick against the fake Heroku: drained traffic in the database, the policy,
the one actions path, a message in the app's channel, and shadow mode that only decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from bot.metrics.aggregate import Window
from bot.metrics.store import MetricsStore
from bot.services import Services
from bot.store.audit import Actor, AuditLog
from bot.store.autoscale_settings import AutoscaleStore, Settings
from bot.worker.autoscale import ACTOR_SHOWN, Autoscaler
from policies.commands import parse
from policies.sketch import Sketch
from policies.slack_text import unescape
from tests.conftest import ADMIN, HEROKU_KEY

NOW = datetime.now(UTC).replace(second=30, microsecond=0)


def traffic(
    services: Services, service_ms: float, rpm: int = 600, minutes: int = 6, now: datetime = NOW
) -> None:
    windows = []
    start = int(now.timestamp()) // 60 * 60 - minutes * 60
    for second in range(start, start + minutes * 60, 10):
        sketch = Sketch()
        sketch.add(service_ms, rpm // 6)
        windows.append(
            Window(
                app="myapp",
                start=second,
                requests=rpm // 6,
                dynos={"web.1": rpm // 6},
                service=sketch,
            )
        )
    MetricsStore(services.db).save(windows)


@pytest.fixture
def services(config):
    return Services(config)


@pytest.fixture
def said():
    return []


@pytest.fixture
def autoscaler(services, said):
    return Autoscaler(services, lambda channel, text: said.append((channel, text)))


def enable(services, mode="on", low=1, high=6):
    AutoscaleStore(services.db).save(
        Settings("myapp", mode, low, high, "service_p95", 500.0, ADMIN, NOW)
    )


def test_slow_responses_scale_up_through_the_actions_path(services, autoscaler, heroku, said):
    enable(services)
    traffic(services, service_ms=1500)
    [decision] = autoscaler.tick(NOW)
    assert (decision.actual, decision.acted) == (1, True)
    assert decision.desired > 1
    assert heroku.formation("myapp")["web"][0] == decision.desired
    [(_, text)] = said
    assert text.startswith("Autoscaler on `myapp`:") and f"→ web 1→{decision.desired}" in text
    # The policy's "1500 ms > 500 ms" reaches Slack, and the record, as Slack text.
    assert "&gt; 500 ms" in text and ">" not in text.replace("&gt;", "")
    assert decision.reason in text
    [entry] = AuditLog(services.db).recent("myapp")
    assert (entry.user_id, entry.source, entry.outcome) == ("autoscaler", "autoscaler", "ok")


def test_shadow_mode_decides_and_records_but_never_acts(services, autoscaler, heroku, said):
    enable(services, mode="shadow")
    traffic(services, service_ms=1500)
    [decision] = autoscaler.tick(NOW)
    assert decision.desired > 1 and decision.acted is False
    assert [r for r in heroku.requests if r.method == "PATCH"] == []
    assert said == []
    assert AutoscaleStore(services.db).decisions("myapp")[0].desired == decision.desired


def test_no_metrics_never_scale_down(services, autoscaler, heroku):
    admin = Actor(ADMIN, source="console")
    services.actions.run(admin, parse("scale web=3 myapp"))
    enable(services, low=1)
    [decision] = autoscaler.tick(NOW)  # no drained traffic at all
    assert (decision.actual, decision.desired, decision.acted) == (3, 3, False)
    assert len([r for r in heroku.requests if r.method == "PATCH"]) == 1  # only the setup


@pytest.fixture
def guarded(config, tmp_path, monkeypatch):
    """Services for `myapp` (channel CMYAPP) with the registry's `guardrails:` given as YAML."""
    made = []

    def make(guardrails: str) -> Services:
        registry = tmp_path / "deploybot.yml"
        registry.write_text(
            "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n"
            f"    guardrails:\n      {guardrails}\n"
        )
        monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
        made.append(Services(config))
        return made[-1]

    yield make
    for services in made:
        services.db.dispose()


def test_a_guardrail_refusal_is_said_in_the_channel(guarded, heroku):
    services, said = guarded("max: {web: 2}"), []
    enable(services, high=6)
    traffic(services, service_ms=5000)
    autoscaler = Autoscaler(services, lambda c, t: said.append((c, t)))
    [decision] = autoscaler.tick(NOW)
    assert decision.acted is False and decision.desired > 2
    [(channel, text)] = said
    assert channel == "CMYAPP"
    assert "Not done: `myapp` allows at most 2 for `web`" in text
    assert [r for r in heroku.requests if r.method == "PATCH"] == []
    # Held back again for the same reason: recorded, but not said again every 15 s.
    [again] = autoscaler.tick(NOW + timedelta(seconds=15))
    assert again.acted is False and "Not done: `myapp` allows at most 2" in again.reason
    assert len(said) == 1
    # Its decisions keep the refusals; the audit log, people's record of changes, does
    # not get one every 15 s.
    assert AuditLog(services.db).recent("myapp", limit=None) == []


def test_the_registry_max_step_paces_the_autoscaler_instead_of_stopping_it(guarded, heroku):
    # Its own step (+100 % or +4) had passed the guardrail, which refused the scale whole:
    # "Not done" every tick, and no dyno added through a spike.
    services, said = guarded("max_step: 2"), []
    enable(services, high=8)
    traffic(services, service_ms=5000)
    [decision] = Autoscaler(services, lambda c, t: said.append((c, t))).tick(NOW)
    assert (decision.actual, decision.desired, decision.acted) == (1, 3, True)
    assert heroku.formation("myapp")["web"][0] == 3
    assert "the registry's max_step allows 2 at a time; 5 wanted" in decision.reason
    assert "Not done" not in said[0][1]


def test_up_when_slow_then_down_when_quiet(services, autoscaler, heroku, said):
    enable(services)
    traffic(services, service_ms=1500)
    [up] = autoscaler.tick(NOW)
    assert up.acted and up.desired > 1
    later = NOW + timedelta(minutes=10)  # past the boot cooldown and the 5-minute stabilization
    traffic(services, service_ms=50, rpm=60, now=later)
    [down] = autoscaler.tick(later)
    assert down.acted and down.actual == up.desired and down.desired < up.desired
    assert heroku.formation("myapp")["web"][0] == down.desired
    assert len(said) == 2


# -- The Heroku API budget: the formation cache, webhooks, the token bucket ---------------

FORMATION = "/apps/myapp/formation"


def api_calls(heroku) -> int:
    return len([r for r in heroku.requests if r.path.startswith("/apps/myapp")])


def steady(services: Services, now: datetime) -> None:
    """Traffic inside the tolerance band of the 500 ms target: one dyno is right."""
    traffic(services, service_ms=480, rpm=600, now=now)


def test_an_app_in_steady_state_costs_no_api_call_between_refreshes(services, autoscaler, heroku):
    enable(services)
    steady(services, NOW)
    autoscaler.tick(NOW)
    assert len(heroku.calls("GET", FORMATION)) == 1  # the first tick has to ask
    per_tick = []
    for step in range(1, 20):  # every 15 s, up to 4 min 45 s
        at = NOW + timedelta(seconds=15 * step)
        steady(services, at)
        before = api_calls(heroku)
        [decision] = autoscaler.tick(at)
        assert (decision.actual, decision.desired, decision.acted) == (1, 1, False)
        per_tick.append(api_calls(heroku) - before)
    assert per_tick == [0] * 19
    # The periodic refresh (15 minutes by default) reads it once more, then quiet again.
    at = NOW + timedelta(minutes=15)
    steady(services, at)
    autoscaler.tick(at)
    assert len(heroku.calls("GET", FORMATION)) == 2
    autoscaler.tick(at + timedelta(seconds=15))
    assert len(heroku.calls("GET", FORMATION)) == 2


def test_the_refresh_interval_comes_from_the_environment(services, said, heroku, monkeypatch):
    monkeypatch.setenv("DEPLOYBOT_FORMATION_REFRESH_SECONDS", "60")
    autoscaler = Autoscaler(services, lambda c, t: said.append((c, t)))
    enable(services)
    steady(services, NOW)
    autoscaler.tick(NOW)
    autoscaler.tick(NOW + timedelta(seconds=45))
    assert len(heroku.calls("GET", FORMATION)) == 1
    autoscaler.tick(NOW + timedelta(seconds=60))
    assert len(heroku.calls("GET", FORMATION)) == 2


def test_our_own_scale_result_is_the_new_formation(services, autoscaler, heroku):
    enable(services)
    traffic(services, service_ms=1500)
    [up] = autoscaler.tick(NOW)
    assert up.acted
    known = autoscaler.known("myapp")
    assert known is not None and known.quantity == up.desired == heroku.formation("myapp")["web"][0]
    reads = len(heroku.calls("GET", FORMATION))
    later = NOW + timedelta(minutes=3)  # past the boot watch: no dyno listing either
    steady(services, later)
    before = api_calls(heroku)
    [next_one] = autoscaler.tick(later)
    assert next_one.actual == up.desired
    assert len(heroku.calls("GET", FORMATION)) == reads and api_calls(heroku) == before


def test_a_formation_webhook_is_noticed_at_once(services, autoscaler, heroku):
    enable(services, low=1, high=6)
    steady(services, NOW)
    autoscaler.tick(NOW)
    # Someone scales by hand (here through the bot; on the dashboard it is the same).
    services.actions.run(Actor(ADMIN, source="console"), parse("scale web=4 myapp"))
    autoscaler.observe_formation("myapp", "web", 4, NOW + timedelta(seconds=5))
    # A late webhook about an older change, and one about another process, change nothing.
    autoscaler.observe_formation("myapp", "web", 2, NOW + timedelta(seconds=1))
    autoscaler.observe_formation("myapp", "worker", 7, NOW + timedelta(seconds=6))
    at = NOW + timedelta(seconds=15)
    traffic(services, service_ms=500, rpm=600, now=at)
    reads = len(heroku.calls("GET", FORMATION))
    [decision] = autoscaler.tick(at)
    assert decision.actual == 4  # not the 1 a stale cache would have scaled "back up" from
    assert len(heroku.calls("GET", FORMATION)) == reads


def test_a_webhook_postpones_the_periodic_refresh(services, autoscaler, heroku):
    enable(services)
    steady(services, NOW)
    autoscaler.tick(NOW)
    autoscaler.observe_formation("myapp", "web", 1, NOW + timedelta(minutes=10))
    at = NOW + timedelta(minutes=15)
    steady(services, at)
    autoscaler.tick(at)  # Heroku spoke 5 minutes ago: no read needed yet
    assert len(heroku.calls("GET", FORMATION)) == 1
    at = NOW + timedelta(minutes=25)
    steady(services, at)
    autoscaler.tick(at)
    assert len(heroku.calls("GET", FORMATION)) == 2


def test_an_unknown_app_seen_first_by_webhook_needs_no_read(services, autoscaler, heroku):
    enable(services)
    steady(services, NOW)
    autoscaler.observe_formation("myapp", "web", 1, NOW - timedelta(seconds=5))
    [decision] = autoscaler.tick(NOW)
    assert decision.actual == 1 and heroku.calls("GET", FORMATION) == []


def test_a_low_budget_skips_the_tick_and_says_why(services, said, heroku, caplog):
    from policies.budget import Budget

    # 450 left is the reserve: the autoscaler may not spend it, not even on a read.
    autoscaler = Autoscaler(services, lambda c, t: said.append((c, t)), budget=Budget(tokens=450))
    enable(services)
    traffic(services, service_ms=1500)
    with caplog.at_level("WARNING", logger="bot.worker.autoscale"):
        assert autoscaler.tick(NOW) == []
    assert api_calls(heroku) == 0 and said == []
    assert "Heroku API budget low" in caplog.text
    # It refills at 1.25 a second: a few seconds later the autoscaler may read and scale.
    [decision] = autoscaler.tick(NOW + timedelta(seconds=4))
    assert decision.acted and api_calls(heroku) == 3  # a read, then the actions path's two


def test_the_budget_mirrors_rate_limit_remaining(services, said, heroku, caplog):
    autoscaler = Autoscaler(services, lambda c, t: said.append((c, t)))
    enable(services)
    traffic(services, service_ms=1500)
    heroku.rate_limit_remaining = 451  # someone else spent the rest of the hour
    with caplog.at_level("WARNING", logger="bot.worker.autoscale"):
        assert autoscaler.tick(NOW) == []  # read (→ 450 left), then the scale is refused
    assert autoscaler.budget("HEROKU_API_KEY").remaining(NOW) == 450
    assert heroku.calls("PATCH", FORMATION) == [] and said == []
    assert "Heroku API budget low" in caplog.text


# -- What decide() is fed: booting dynos and the seasonal forecast -----------------------


@pytest.fixture
def fed(monkeypatch):
    """The keyword arguments of each decide() call."""
    from policies import autoscale

    calls: list[dict] = []
    real = autoscale.decide

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(autoscale, "decide", spy)
    return calls


def test_booting_dynos_are_counted_only_just_after_our_scale_up(services, autoscaler, heroku, fed):
    heroku.boot_seconds = 45
    enable(services)
    traffic(services, service_ms=1500)
    [up] = autoscaler.tick(NOW)
    assert up.acted and fed[-1]["booting"] is None  # nothing of ours was booting
    dyno_reads = lambda: len(heroku.calls("GET", "/apps/myapp/dynos"))  # noqa: E731
    at = NOW + timedelta(seconds=15)
    traffic(services, service_ms=1500, now=at)
    autoscaler.tick(at)
    assert fed[-1]["booting"] == up.desired - 1 and dyno_reads() == 1
    heroku.advance(60)
    at = NOW + timedelta(seconds=75)
    steady(services, at)
    autoscaler.tick(at)
    assert fed[-1]["booting"] == 0 and dyno_reads() == 2
    # All up: no more listing, even within the two minutes.
    autoscaler.tick(at + timedelta(seconds=15))
    assert fed[-1]["booting"] is None and dyno_reads() == 2


def test_the_seasonal_forecast_reads_yesterday_and_last_week(services, autoscaler, fed):
    enable(services, high=10)
    minute = int(NOW.timestamp()) // 60
    windows = []
    # A day and a week ago traffic tripled two minutes after this time; today is flat.
    for lag in (1440, 7 * 1440):
        for m in range(minute - lag - 200, minute - lag + 10):
            rpm = 1800 if m >= minute - lag + 1 else 600
            windows.append(Window(app="myapp", start=m * 60, requests=rpm, dynos={"web.1": rpm}))
    for m in range(minute - 200, minute - 6):
        windows.append(Window(app="myapp", start=m * 60, requests=600, dynos={"web.1": 600}))
    store = MetricsStore(services.db)
    store.save(windows)
    store.compact(int(NOW.timestamp()))  # the worker's job writes the per-minute counts
    steady(services, NOW)
    autoscaler.tick(NOW)
    forecast = fed[-1]["forecast"]
    assert forecast is not None and forecast.growth == pytest.approx(3.0)


def test_no_history_means_no_forecast(services, autoscaler, fed):
    enable(services)
    steady(services, NOW)
    autoscaler.tick(NOW)
    assert fed[-1]["forecast"] is None


def test_the_measured_api_calls_per_app_hour_behind_the_readme():
    """`python -m benchmarks.autoscaler_api_calls`: a steady app costs only the 4 refreshes."""
    from benchmarks.autoscaler_api_calls import measure

    steady_hour = measure("steady")
    assert steady_hour["api_calls_per_hour"] == 4
    assert steady_hour["by_request"] == {"GET /apps/myapp/formation": 4}
    assert steady_hour["apps_per_account"] >= 1000


def test_worker_types_cost_their_scale_actions_not_a_read_a_tick(monkeypatch):
    """The same benchmark with `worker` autoscaled from a real hirefire-resource endpoint:
    its tick shares web's formation knowledge, so a quiet hour adds only the one scale to
    min (1 → 0: a read and a write), against a read every tick when the refresh is off."""
    from benchmarks.autoscaler_api_calls import measure

    monkeypatch.setenv("HIREFIRE_TOKEN", "bench-hirefire-token")
    shared = measure("steady+worker")
    assert shared["by_request"] == {
        "GET /apps/myapp/formation": 5,
        "PATCH /apps/myapp/formation": 1,
    }
    every_tick = measure("steady+worker", every_tick=True)
    assert every_tick["api_calls_per_hour"] > 200


# -- What Heroku's webhooks told the web dyno, read by the worker's tick -------------------


def test_a_hand_scale_reported_by_webhook_is_known_at_the_next_tick(
    services, autoscaler, heroku, said
):
    from bot.store.observations import Observation

    enable(services, low=1, high=6)
    steady(services, NOW)
    autoscaler.tick(NOW)
    _scale_by_hand(heroku, 4)
    # What `POST /webhooks/heroku` stores for the dashboard's scale (tests/test_alerts_e2e).
    seen = NOW + timedelta(seconds=5)
    services.observations.record(Observation("myapp", "formation", "web", 4, seen, "by dev"))
    at = NOW + timedelta(seconds=15)
    traffic(services, service_ms=500, rpm=600, now=at)
    reads = len(heroku.calls("GET", FORMATION))
    [decision] = autoscaler.tick(at)
    assert decision.actual == 4 and len(heroku.calls("GET", FORMATION)) == reads
    # Said once in the channel, with how to make it stick.
    [(_, notice)] = [(c, t) for c, t in said if "outside the bot" in t]
    assert notice == (
        "Autoscaler on `myapp`: web was set to 4 outside the bot (by dev); I go on from "
        "there. To hold it, `/deploy pin myapp web=4 for 2h`."
    )
    # Read again every tick, the same old observation never undoes a newer change.
    autoscaler.observe_formation("myapp", "web", 2, NOW + timedelta(seconds=20))
    [again] = autoscaler.tick(NOW + timedelta(seconds=30))
    assert again.actual == 2
    assert len([t for _, t in said if "outside the bot" in t]) == 1


def _scale_by_hand(heroku, quantity: int) -> None:
    """Someone scales web in the dashboard or with the CLI: Heroku's API, not the bot."""
    session = requests.Session()
    session.trust_env = False
    answer = session.patch(
        f"{heroku.url}/apps/myapp/formation",
        json={"updates": [{"type": "web", "quantity": quantity}]},
        headers={"Accept": "application/vnd.heroku+json; version=3"},
        auth=("", HEROKU_KEY),
    )
    assert answer.status_code == 200, answer.text


def test_a_scale_made_with_the_bot_is_not_said_to_be_made_outside_it(services, autoscaler, said):
    """`/deploy scale` in Slack goes through the web dyno, and Heroku's formation webhook for it
    names the API key's owner: the worker had told the channel that web "was set to 4
    outside the bot (by owner@…)", for a change a person made with the bot a moment before."""
    from bot.store.observations import Observation

    # The audit row is dated by the wall clock, and the webhook within seconds of it: the
    # test's clock is the wall clock too, not NOW, which a long suite leaves minutes behind.
    now = datetime.now(UTC)
    enable(services, low=1, high=6)
    steady(services, now)
    autoscaler.tick(now)
    services.actions.run(Actor(ADMIN, source="slack"), parse("scale web=4 myapp"))
    seen = now + timedelta(seconds=5)  # Heroku dates it within seconds of the audit row
    services.observations.record(
        Observation("myapp", "formation", "web", 4, seen, "by owner@example.com")
    )
    autoscaler.tick(now + timedelta(seconds=15))
    [notice] = [t for _, t in said if "web was set to 4" in t]
    assert notice == (
        f"Autoscaler on `myapp`: web was set to 4 by <@{ADMIN}> with `/deploy scale web=4 "
        "myapp`; I go on from there. To hold it, `/deploy pin myapp web=4 for 2h`."
    )


def test_a_scale_by_the_autoscaler_of_another_worker_is_no_news(services, autoscaler, said):
    """The lease moved between worker dynos: what the other one scaled, reported by webhook,
    is believed and not told to the channel as someone else's change."""
    from bot.actions.gate import AUTOSCALER
    from bot.store.observations import Observation

    # The audit row is dated by the wall clock, and the webhook within seconds of it: the
    # test's clock is the wall clock too, not NOW, which a long suite leaves minutes behind.
    now = datetime.now(UTC)
    enable(services, low=1, high=6)
    steady(services, now)
    autoscaler.tick(now)
    services.actions.run(Actor(AUTOSCALER, source=AUTOSCALER), parse("scale web=4 myapp"))
    seen = now + timedelta(seconds=5)  # Heroku dates it within seconds of the audit row
    services.observations.record(Observation("myapp", "formation", "web", 4, seen, "by owner"))
    [decision] = autoscaler.tick(now + timedelta(seconds=15))
    assert decision.actual == 4  # believed, without a read
    assert [t for _, t in said if "was set to" in t] == []


def test_a_hand_scale_by_a_very_long_actor_is_said_clipped(services, autoscaler, said):
    """Who scaled comes from Heroku's webhook as any text: the notice clips it, as alerts and
    status clip every platform string, so Slack never refuses the message for its size."""
    from bot.store.observations import Observation

    enable(services, low=1, high=6)
    steady(services, NOW)
    autoscaler.tick(NOW)
    actor = "by " + "<x&>" * 2500  # 10 KB, each character one Slack would escape
    seen = NOW + timedelta(seconds=5)
    services.observations.record(Observation("myapp", "formation", "web", 4, seen, actor))
    autoscaler.tick(NOW + timedelta(seconds=15))
    [notice] = [t for _, t in said if "outside the bot" in t]
    assert "<" not in notice and len(unescape(notice)) < 300
    shown = notice.split(" outside the bot (")[1].split("); I go on")[0]
    assert shown.endswith("…") and len(unescape(shown)) == ACTOR_SHOWN


@pytest.mark.parametrize("released_minutes_ago, holds", [(2, True), (30, False)])
def test_a_recent_release_holds_scale_down(
    services, autoscaler, heroku, released_minutes_ago, holds
):
    from bot.store.observations import Observation

    services.actions.run(Actor(ADMIN, source="console"), parse("scale web=4 myapp"))
    enable(services, low=1, high=6)
    released = NOW - timedelta(minutes=released_minutes_ago)
    services.observations.record(Observation("myapp", "release", "current", 42, released))
    traffic(services, service_ms=50, rpm=60)
    [decision] = autoscaler.tick(NOW)
    assert decision.actual == 4
    assert (decision.desired == 4) is holds and decision.acted is not holds
    assert ("release" in decision.reason) is holds


def test_a_schedule_window_in_the_registry_raises_the_min_at_once(
    config, heroku, tmp_path, monkeypatch, said
):
    registry = tmp_path / "deploybot.yml"
    registry.write_text(
        "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n    autoscale:\n"
        "      schedule:\n        - days: daily\n          from: '00:00'\n          to: '00:00'\n"
        "          min: 3\n"
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    services = Services(config)
    enable(services, low=1, high=6)
    steady(services, NOW)  # one dyno would do: only the schedule asks for more
    [decision] = Autoscaler(services, lambda c, t: said.append((c, t))).tick(NOW)
    assert (decision.actual, decision.desired, decision.acted) == (1, 3, True)
    assert heroku.formation("myapp")["web"][0] == 3
    assert "schedule daily 00:00–00:00 UTC sets min 3" in said[0][1]
    status = services.actions.run(Actor(ADMIN, source="console"), parse("autoscale myapp status"))
    assert "Schedule: daily 00:00–00:00 UTC: min 3 (now) (registry)." in status.text


@pytest.mark.parametrize(("stabilization", "down"), [(None, True), ("10m", False)])
def test_the_registry_can_set_the_scale_down_stabilization(
    config, heroku, tmp_path, monkeypatch, said, stabilization, down
):
    entry = "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n"
    if stabilization:
        entry += f"    autoscale:\n      down_stabilization: {stabilization}\n"
    registry = tmp_path / "deploybot.yml"
    registry.write_text(entry)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    services = Services(config)
    enable(services)
    autoscaler = Autoscaler(services, lambda c, t: said.append((c, t)))
    traffic(services, service_ms=1500)
    [up] = autoscaler.tick(NOW)
    # Past the adaptive window on steady traffic (1 minute), inside a set 10 minutes.
    later = NOW + timedelta(minutes=2)
    traffic(services, service_ms=50, rpm=60, now=later)
    [after] = autoscaler.tick(later)
    assert (after.desired < up.desired) is down and after.acted is down
    status = services.actions.run(Actor(ADMIN, source="console"), parse("autoscale myapp status"))
    assert ("highest wish of the last 10 min (registry)" in status.text) is not down
    assert ("last 1–5 min, longer the jumpier the traffic (default)" in status.text) is down


def test_the_tick_uses_what_chat_set_where_the_registry_is_silent():
    from bot.registry import Target
    from bot.store.autoscale_overrides import Override
    from bot.worker.autoscale import policy_of

    stored = Settings("myapp", "on", 1, 8, "rpm", 1000.0, ADMIN, NOW)
    chat = {
        "down_stabilization": Override("myapp", "down_stabilization", "2m", ADMIN, NOW),
        "max_step": Override("myapp", "max_step", "3", ADMIN, NOW),
    }
    policy = policy_of(stored, Target("myapp", "heroku", "myapp"), chat)
    assert policy.down_stabilization == timedelta(minutes=2)
    assert (policy.up_max_dynos, policy.up_max_percent, policy.down_max_dynos) == (3, 0.0, 3)
    # The registry wins where it sets the key; with nothing set, the adaptive default.
    ruled = Target("myapp", "heroku", "myapp", down_stabilization=timedelta(minutes=7))
    assert policy_of(stored, ruled, chat).down_stabilization == timedelta(minutes=7)
    assert policy_of(stored, Target("myapp", "heroku", "myapp"), {}).down_stabilization is None


@pytest.mark.parametrize("seen", ["a 429", "the reserve reached"])
def test_what_the_web_dyno_saw_of_the_account_holds_the_autoscaler(
    config, services, said, heroku, caplog, seen
):
    web = Services(config)  # another process: the web dyno, sharing only the database
    try:
        autoscaler = Autoscaler(services, lambda c, t: said.append((c, t)))
        enable(services)
        traffic(services, service_ms=1500)
        if seen == "a 429":
            heroku.fail_next(429, count=1, retry_after=600)
        else:
            # People's commands spent the rest, past the reserve by more than the bucket
            # refills in the half minute NOW may run ahead of the web dyno's clock.
            heroku.rate_limit_remaining = 400
        web.actions.run(Actor(ADMIN), parse("status myapp"))
        calls = api_calls(heroku)
        with caplog.at_level("WARNING", logger="bot.worker.autoscale"):
            assert autoscaler.tick(NOW) == []
        assert api_calls(heroku) == calls and said == []
        why = "throttles the account" if seen == "a 429" else "Heroku API budget low"
        assert why in caplog.text
    finally:
        web.db.dispose()


def test_a_worker_just_started_takes_the_web_dynos_last_figure(config, services, said, heroku):
    """A bucket never used knows nothing: the figure the web dyno stored a moment before
    the worker's first tick counts (it had counted only when stamped after that tick)."""
    web = Services(config)
    try:
        autoscaler = Autoscaler(services, lambda c, t: said.append((c, t)))
        enable(services)
        heroku.rate_limit_remaining = 400
        web.actions.run(Actor(ADMIN), parse("status myapp"))
        later = datetime.now(UTC) + timedelta(seconds=1)
        traffic(services, service_ms=1500, now=later)
        calls = api_calls(heroku)
        assert autoscaler.tick(later) == []
        assert api_calls(heroku) == calls and said == []
    finally:
        web.db.dispose()


@pytest.mark.parametrize("meanwhile", ["pin", "off"])
def test_a_pin_or_off_set_while_the_tick_ran_is_not_overridden(
    services, autoscaler, heroku, said, monkeypatch, meanwhile
):
    """At a thousand apps a tick takes a second or more: a person's pin or `off` landing
    after it read the settings had been scaled over until the next tick."""
    from bot.store.autoscale_settings import Pin

    enable(services)
    traffic(services, service_ms=1500)
    store = AutoscaleStore(services.db)
    read_pins = store.pins

    def pinned_after_the_read(now):
        pins = read_pins(now)
        if meanwhile == "pin":
            store.set_pin(Pin("myapp", 1, NOW + timedelta(hours=2), ADMIN))
        else:
            enable(services, mode="off")
        return pins

    monkeypatch.setattr(autoscaler._store, "pins", pinned_after_the_read)
    [decision] = autoscaler.tick(NOW)
    assert decision.desired > 1 and decision.acted is False
    assert "Not done: its settings or pin changed while this tick ran" in decision.reason
    assert [r for r in heroku.requests if r.method == "PATCH"] == [] and said == []


def test_a_tick_paused_between_reading_traffic_and_acting_does_not_act(services, heroku, said):
    """The machine pauses (a stopped VM, a swap storm) after the tick read the fleet's
    traffic: ten minutes later that traffic says nothing of now, and scaling on it had
    added dynos for a spike long over. The next tick decides from fresh traffic."""
    readings = iter([NOW, NOW + timedelta(minutes=10)])
    autoscaler = Autoscaler(
        services, lambda c, t: said.append((c, t)), clock=lambda: next(readings)
    )
    enable(services)
    traffic(services, service_ms=1500)
    [decision] = autoscaler.tick(NOW)
    assert decision.desired > 1 and decision.acted is False
    assert "Not done: this tick read its traffic 10 min ago" in decision.reason
    assert [r for r in heroku.requests if r.method == "PATCH"] == []
    assert said == []


def test_stale_metrics_are_on_the_decisions_log_line_not_a_warning_each_tick(
    services, autoscaler, caplog
):
    # A broken drain makes every tick stale: a warning each had been 5,760 log lines a day
    # an app (and in the sandbox console, lines between the play's own), while the
    # "metrics stale" alert already says it where people look.
    enable(services)
    traffic(services, service_ms=100, now=NOW - timedelta(minutes=10))
    with caplog.at_level("INFO", logger="bot.worker.autoscale"):
        [decision] = autoscaler.tick(NOW)
    assert "metrics stale" in decision.reason
    [line] = [r for r in caplog.records if r.getMessage() == "autoscale decision"]
    assert line.levelname == "INFO" and line.stale is True
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def test_a_formation_the_tick_cannot_read_for_minutes_is_said_once_in_the_channel(
    services, autoscaler, heroku, said
):
    # A revoked API key (or an app renamed on Heroku) had stopped autoscaling with a log
    # line each tick and nothing anywhere a person looks: no notice, no decision, no trouble.
    enable(services)
    traffic(services, service_ms=1500)
    refused = {"id": "unauthorized", "message": "Invalid credentials provided."}
    ticks = 40  # ten minutes of ticks, each a read the key is refused
    heroku.fail_next(401, count=ticks, body=refused)
    for k in range(ticks):
        assert autoscaler.tick(NOW + timedelta(seconds=15 * k)) == []
        if k * 15 < 300:  # a blip of a few minutes is no news
            assert said == []
    [(_, text)] = said
    assert text == (
        "Autoscaler on `myapp`: not autoscaled for 5 min, as what runs could not be read: "
        "Heroku rejected the bot's API key. An admin should check HEROKU_API_KEY. "
        "I try again each tick."
    )
    mended = NOW + timedelta(seconds=15 * ticks)
    traffic(services, service_ms=1500, now=mended)
    [decision] = autoscaler.tick(mended)  # the key mended
    assert decision.acted and len(said) == 2


@pytest.mark.parametrize("code", ["H80", "H10", "H99"])
def test_requests_no_dyno_served_are_no_load_for_a_rate_target(services, autoscaler, heroku, code):
    # `/deploy maintenance APP on`: the router answers every request itself, logging
    # `code=H80 status=503` with no dyno; a crashed app (H10) and Heroku's own error (H99)
    # alike. Those had counted as requests per dyno and scaled the app up to its max.
    AutoscaleStore(services.db).save(Settings("myapp", "on", 1, 6, "rpm", 600.0, ADMIN, NOW))
    start = int(NOW.timestamp()) // 60 * 60 - 6 * 60
    windows = [
        Window(
            app="myapp",
            start=second,
            requests=600,
            statuses={"5xx": 600},
            codes={code: 600},
        )
        for second in range(start, int(NOW.timestamp()) - 10, 10)
    ]
    MetricsStore(services.db).save(windows)
    [decision] = autoscaler.tick(NOW)
    assert (decision.actual, decision.desired, decision.acted) == (1, 1, False)
    assert [r for r in heroku.requests if r.method == "PATCH"] == []


def test_requests_while_no_web_dyno_runs_still_start_dynos(services, autoscaler, heroku):
    # H14 (no web dynos running) reaches no dyno either, but with web at 0 it is the only
    # sign of the traffic the dynos to start should carry.
    heroku.add_app("idle-app", formation={"web": (0, "standard-1x")})
    AutoscaleStore(services.db).save(Settings("idle-app", "on", 0, 6, "rpm", 600.0, ADMIN, NOW))
    start = int(NOW.timestamp()) // 60 * 60 - 6 * 60
    windows = [
        Window(
            app="idle-app", start=second, requests=300, statuses={"5xx": 300}, codes={"H14": 300}
        )
        for second in range(start, int(NOW.timestamp()) - 10, 10)
    ]
    MetricsStore(services.db).save(windows)
    [decision] = autoscaler.tick(NOW)
    assert (decision.actual, decision.desired) == (0, 3)


def test_a_pin_s_end_in_the_autoscaler_s_notice_is_in_each_reader_s_time_zone(
    services, autoscaler, said
):
    # `/deploy pin`, `autoscale status` and App Home give a pin's end in Slack's date
    # token, each reader's own clock; the autoscaler's notice of the same pin said
    # "until 14:37 UTC", so a reader outside UTC saw two different times for one pin.
    from bot.store.autoscale_settings import Pin
    from policies.slack_text import moment

    enable(services)
    until = NOW + timedelta(hours=2)
    AutoscaleStore(services.db).set_pin(Pin("myapp", 3, until, ADMIN))
    [decision] = autoscaler.tick(NOW)
    assert decision.acted is True
    [(_, text)] = said
    assert f"pinned by <@{ADMIN}> at web=3 until {moment(until, NOW)}" in text, text
    assert f"until {moment(until, NOW)}" in decision.reason


@pytest.mark.parametrize("raw", ["nan", "inf", "1e400", "15m", "0"])
def test_a_formation_refresh_that_is_no_number_of_seconds_is_refused_with_its_name(
    monkeypatch, raw
):
    # "nan" had reached timedelta(seconds=nan) and "inf" its OverflowError: the autoscale
    # job failed at every tick, building its Autoscaler, and nothing was scaled.
    from bot.config import ConfigError
    from bot.worker.autoscale import formation_refresh_from_env

    monkeypatch.setenv("DEPLOYBOT_FORMATION_REFRESH_SECONDS", raw)
    with pytest.raises(ConfigError, match="DEPLOYBOT_FORMATION_REFRESH_SECONDS must be"):
        formation_refresh_from_env()


def test_a_formation_of_the_wrong_shape_skips_the_app_not_the_tick(
    services, autoscaler, heroku, monkeypatch
):
    # A null quantity in Heroku's answer raised a TypeError out of the tick, which stopped
    # it for every app; it is now a read that failed, as a 503 is.
    enable(services)
    traffic(services, service_ms=1500)
    real_json = requests.Response.json

    def misshapen(response, **kwargs):
        body = real_json(response, **kwargs)
        if response.url.endswith("/formation") and response.request.method == "GET":
            return [{**item, "quantity": None} for item in body]
        return body

    monkeypatch.setattr(requests.Response, "json", misshapen)
    assert autoscaler.tick(NOW) == []
    monkeypatch.setattr(requests.Response, "json", real_json)
    [decision] = autoscaler.tick(NOW + timedelta(seconds=15))
    assert decision.acted
