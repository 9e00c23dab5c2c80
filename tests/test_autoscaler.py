"""The autoscale tick against the fake Heroku: drained traffic in the database, the policy,
the one actions path, a message in the app's channel, and shadow mode that only decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.audit import Actor, AuditLog
from bot.autoscale_store import AutoscaleStore, Settings
from bot.autoscaler import Autoscaler
from bot.metrics.aggregate import Window
from bot.metrics.store import MetricsStore
from bot.services import Services
from policies.commands import parse
from policies.sketch import Sketch
from tests.conftest import ADMIN

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


def test_a_guardrail_refusal_is_said_in_the_channel(config, heroku, tmp_path, monkeypatch):
    registry = tmp_path / "deploybot.yml"
    registry.write_text(
        "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n"
        "    guardrails:\n      max: {web: 2}\n"
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    services, said = Services(config), []
    enable(services, high=6)
    traffic(services, service_ms=5000)
    [decision] = Autoscaler(services, lambda c, t: said.append((c, t))).tick(NOW)
    assert decision.acted is False and decision.desired > 2
    [(channel, text)] = said
    assert channel == "CMYAPP"
    assert "Not done: `myapp` allows at most 2 for `web`" in text
    assert [r for r in heroku.requests if r.method == "PATCH"] == []


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
