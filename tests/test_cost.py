"""`/deploy cost [APP]`: monthly cost at list prices from the formation, and the last week's
web dyno-hours from the autoscaler's record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store.autoscale_settings import AutoscaleStore, Decision
from policies import costs
from tests.conftest import USER
from tests.webclient import SlackDriver


@pytest.fixture
def web(new_app, config):
    app = new_app(config)
    yield app
    app.extensions["deploybot"].db.dispose()  # its pool's connections, now


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def test_dyno_hours_hold_each_count_until_the_next_sample_and_cap_gaps():
    samples = [(0.0, 2), (3600.0, 4), (7200.0, 1)]
    hours, covered = costs.dyno_hours(samples, 7200.0 + 300, longest_gap=3600)
    assert hours == pytest.approx(2 + 4 + 300 / 3600)
    assert covered == pytest.approx(2 + 300 / 3600)
    # The worker was down for a day: the gap counts only up to longest_gap.
    hours, covered = costs.dyno_hours([(0.0, 3)], 86400.0, longest_gap=300)
    assert (hours, covered) == (pytest.approx(0.25), pytest.approx(300 / 3600))


def test_monthly_cost_prices_a_formation():
    cost = costs.monthly_cost("heroku", {"web": (2, "Standard-2X"), "worker": (0, "basic")})
    assert (cost.usd, cost.estimate, cost.unknown_sizes) == (100.0, False, ())
    ec2 = costs.monthly_cost("beanstalk", {"web": (2, "t3.small")})
    assert ec2.estimate and ec2.usd == pytest.approx(2 * 0.0208 * 730, abs=0.01)


def test_cost_of_one_app_with_its_week_of_dyno_hours(driver, web):
    services = web.extensions["deploybot"]
    store = AutoscaleStore(services.db)
    now = datetime.now(UTC)
    for minutes_ago, actual in ((120, 1), (60, 3), (1, 3)):
        at = now - timedelta(minutes=minutes_ago)
        store.record(Decision("myapp", at, actual, actual, False, "steady"))
    _, url = driver.command("cost myapp", USER)
    text = driver.reply(url)["text"]
    assert "• `myapp`: $50/month: web 1 × Standard-1X, worker 1 × Standard-1X" in text
    # 1 dyno for 5 minutes (gaps count at most 5), then 3 for 5, then 3 for about 1 minute.
    assert "last 7 days: 0.4 web dyno-hours" in text
    assert "Total" not in text


def test_a_weeks_dyno_hours_outlive_the_two_days_of_full_ticks(driver, web, config):
    from bot.store.autoscale_settings import THIN_SECONDS
    from bot.worker.main import KEEP_DECISIONS, THIN_SPAN, Worker

    store = AutoscaleStore(web.extensions["deploybot"].db)
    now = datetime.now(UTC)
    ticks = [now - timedelta(seconds=s) for s in range(3 * 86400, 0, -15)]
    store.record_many(Decision("myapp", at, 1, 1, False, "steady") for at in ticks)
    worker = Worker(config)
    try:
        worker.forget_request_keys()  # the hourly retention job
    finally:
        worker.db.dispose()
    # It had deleted every tick older than two days: "covers 48.0 of 168 h", as if the
    # worker had been down for five days.
    _, url = driver.command("cost myapp", USER)
    assert (
        "last 7 days: 72.0 web dyno-hours ≈ $2.47 (the autoscaler's record covers 72.0 of "
        in (driver.reply(url)["text"])
    )
    # Past the two days, the last hourly runs' span keeps one tick in 16.
    kept = store.decisions("myapp", 100_000, since=now - KEEP_DECISIONS - THIN_SPAN)
    thinned = [d for d in kept if d.at < now - KEEP_DECISIONS]
    # (A span that straddles either end keeps its own first: a row or two more.)
    assert len(thinned) == pytest.approx(THIN_SPAN.total_seconds() / THIN_SECONDS, abs=2)
    assert len(kept) - len(thinned) == pytest.approx(KEEP_DECISIONS.total_seconds() / 15, abs=1)


def test_cost_with_no_registry_says_how_to_price_an_app_by_its_name(driver):
    _, url = driver.command("cost", USER)
    text = driver.reply(url)["text"]
    # No registry: every Heroku app the key can see is managed by its own name (`apps`
    # says so), so "I manage no apps yet" contradicted it; unlisted apps join the fleet's
    # answer once the autoscaler runs them.
    assert "I manage no apps yet" not in text
    assert "`/deploy cost APP` prices any Heroku app the bot's key can see" in text
    _, url = driver.command("cost myapp", USER)
    assert "• `myapp`: $50/month" in driver.reply(url)["text"]


def test_cost_with_a_registry_of_no_apps_says_there_is_nothing_to_price(
    new_app, config, slack, tmp_path, monkeypatch
):
    path = tmp_path / "deploybot.yml"
    path.write_text("apps: {}\n")  # a file: unlisted Heroku apps are not reachable
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    driver = SlackDriver(new_app(config).test_client(), slack)
    _, url = driver.command("cost", USER)
    assert driver.reply(url)["text"] == "I manage no apps yet, so there is nothing to price."


def test_an_app_heroku_would_not_show_says_why_escaped_once(driver, heroku):
    # Twice: `myapp` is outside the registry, so its name is read first, then its cost.
    heroku.fail_next(400, 2, methods=["GET"], body={"id": "x", "message": "A & <b>"})
    _, url = driver.command("cost myapp", USER)
    text = driver.reply(url)["text"]
    assert "• `myapp`: unknown (Heroku answered 400: A &amp; &lt;b&gt;.)" in text
