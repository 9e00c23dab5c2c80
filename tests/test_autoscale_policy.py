"""The autoscaling calculator on hand-made metric series: the HPA rule and its tolerance band,
step limits, stabilization, boot cooldown, stale metrics, deploy guard, schedule windows,
pins and the seasonal forecast; then properties over arbitrary series (hypothesis)."""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.autoscale import (
    Forecast,
    Pin,
    Recommendation,
    Sample,
    ScaleEvent,
    Settings,
    Target,
    Window,
    bounds,
    decide,
    fell_beyond_noise,
    forecast_base,
    forecast_growth,
    forecast_skill,
    headroom,
    history_minutes,
    noise,
    noise_detrended,
    parse_window,
    rate_level,
    seasonal_forecast,
    stabilization,
    volatility,
)

NOON = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)  # a Wednesday
QUEUE = Settings(targets=(Target("queue_p95", 300.0),), min_dynos=1, max_dynos=20)
RPM = Settings(targets=(Target("rpm_per_dyno", 1000.0),), min_dynos=1, max_dynos=40)


def series(
    *, rpm: float = 1000.0, queue: float | None = 100.0, minutes: float = 2, now=NOON
) -> list[Sample]:
    """A steady series, one sample every 15 s for `minutes`, the newest at `now`."""
    count = int(minutes * 4) + 1
    return [
        Sample(now - timedelta(seconds=15 * i), rpm, queue, 80.0) for i in range(count - 1, -1, -1)
    ]


def test_scales_up_with_the_hpa_rule_and_says_why() -> None:
    decision = decide(QUEUE, 3, series(queue=480.0), NOON)
    assert decision.desired == 5  # ceil(3 * 480 / 300)
    assert decision.reason == "p95 queue 480 ms > 300 ms for 3 min → web 3→5"
    assert decision.changed and not decision.stale
    assert decision.recommendation == 5


def test_no_change_inside_the_tolerance_band() -> None:
    for queue in (271.0, 300.0, 329.0):
        decision = decide(QUEUE, 4, series(queue=queue), NOON)
        assert decision.desired == 4, queue
        assert "within 10% of 300 ms: web stays at 4" in decision.reason
    # Just outside the band the rule applies again.
    assert decide(QUEUE, 4, series(queue=340.0), NOON).desired == 5


def test_rpm_target_divides_the_traffic() -> None:
    assert decide(RPM, 2, series(rpm=5500.0), NOON).desired == 6
    # A fall needs the minute's average too: one quiet window does not shed dynos.
    samples = series(rpm=5500.0)
    samples[-1] = Sample(NOON, 1500.0, None, None)
    # The minute: 4,500, within the band; the dip is noise too, which the default keeps
    # room for (test_the_default_keeps_room_for_the_rates_noise), so never fewer than 5.
    assert decide(RPM, 5, samples, NOON).desired >= 5
    assert decide(RPM, 5, series(rpm=1500.0), NOON).desired == 4  # step limit -1


def test_several_targets_take_the_largest_answer() -> None:
    both = Settings(targets=(Target("rpm_per_dyno", 1000.0), Target("queue_p95", 300.0)))
    assert decide(both, 2, series(rpm=2000.0, queue=600.0), NOON).desired == 4
    assert decide(both, 4, series(rpm=5000.0, queue=100.0), NOON).desired == 5


def test_step_limits_up_and_down() -> None:
    # Up: +100 % or +4 dynos, whichever is larger.
    assert decide(QUEUE, 2, series(queue=30_000.0), NOON).desired == 6
    assert decide(QUEUE, 8, series(queue=30_000.0), NOON).desired == 16
    reason = decide(QUEUE, 2, series(queue=30_000.0), NOON).reason
    assert "(step limit +4; 20 wanted)" in reason
    # Down: -1 dyno or -10 %, whichever is larger.
    assert decide(QUEUE, 5, series(queue=0.0), NOON).desired == 4
    assert decide(QUEUE, 20, series(queue=0.0), NOON).desired == 18


def test_scale_down_stops_at_the_highest_recommendation_of_the_last_5_minutes() -> None:
    five = replace(RPM, down_stabilization=timedelta(minutes=5))
    recent = [
        Recommendation(NOON - timedelta(minutes=4), 7),
        Recommendation(NOON - timedelta(minutes=1), 3),
    ]
    decision = decide(five, 8, series(rpm=2000.0), NOON, recommendations=recent)
    assert decision.desired == 7
    assert decision.recommendation == 2  # stored as measured, not as stabilized
    held = decide(five, 7, series(rpm=2000.0), NOON, recommendations=recent)
    assert held.desired == 7
    assert "but the last 5 min asked for up to 7" in held.reason
    # A recommendation older than the window no longer holds anything.
    old = [Recommendation(NOON - timedelta(minutes=5, seconds=1), 7)]
    assert decide(five, 7, series(rpm=2000.0), NOON, recommendations=old).desired == 6


def test_no_second_scale_up_while_the_last_ones_boot() -> None:
    up = [ScaleEvent(NOON - timedelta(seconds=30), 3, 5)]
    busy = series(queue=900.0)
    held = decide(QUEUE, 5, busy, NOON, events=up, booting=2)
    assert held.desired == 5
    assert "still booting" in held.reason
    assert decide(QUEUE, 5, busy, NOON, events=up, booting=None).desired == 5
    # Up already, or 60 s passed: scale again.
    assert decide(QUEUE, 5, busy, NOON, events=up, booting=0).desired == 10
    later = [ScaleEvent(NOON - timedelta(seconds=61), 3, 5)]
    assert decide(QUEUE, 5, busy, NOON, events=later, booting=2).desired == 10
    # A scale-down is no reason to wait.
    down = [ScaleEvent(NOON - timedelta(seconds=10), 6, 5)]
    assert decide(QUEUE, 5, busy, NOON, events=down, booting=2).desired == 10


def test_stale_or_missing_metrics_never_scale_down_and_say_so() -> None:
    old = series(queue=0.0, now=NOON - timedelta(minutes=3))
    decision = decide(QUEUE, 6, old, NOON)
    assert decision.stale and decision.desired == 6
    assert decision.reason == "metrics stale (the newest sample is 3 min old): web stays at 6"
    nothing = decide(QUEUE, 6, [], NOON)
    assert nothing.stale and nothing.desired == 6 and "no metrics" in nothing.reason
    missing = decide(QUEUE, 6, series(queue=None), NOON)
    assert missing.stale and missing.desired == 6
    # No requests at all means nobody waited: that is a metric, not a missing one.
    idle = decide(QUEUE, 6, series(rpm=0.0, queue=None), NOON)
    assert not idle.stale and idle.desired == 5
    # Stale data does not scale up either, but the bounds still hold.
    assert decide(QUEUE, 6, series(queue=5000.0, now=NOON - timedelta(hours=1)), NOON).desired == 6
    assert decide(QUEUE, 30, old, NOON).desired == 20


def test_a_release_holds_scale_down_but_not_scale_up() -> None:
    release = NOON - timedelta(minutes=3)
    held = decide(QUEUE, 6, series(queue=0.0), NOON, last_release_at=release)
    assert held.desired == 6
    assert "a release 3 min ago holds scale-down for 10 min" in held.reason
    assert decide(QUEUE, 6, series(queue=900.0), NOON, last_release_at=release).desired == 12
    long_ago = NOON - timedelta(minutes=11)
    assert decide(QUEUE, 6, series(queue=0.0), NOON, last_release_at=long_ago).desired == 5


def test_schedule_windows_set_min_and_max_in_their_time_zone() -> None:
    # 14:00 in Paris is 12:00 UTC in June.
    office = Window(frozenset(range(5)), time(8), time(18), "Europe/Paris", min=4, max=12)
    night = Window(frozenset({2}), time(22), time(6), "Europe/Paris", max=2)
    scheduled = Settings(targets=QUEUE.targets, windows=(office, night))
    assert bounds(scheduled, NOON)[:2] == (4, 12)
    decision = decide(scheduled, 2, series(queue=100.0), NOON)
    assert decision.desired == 4
    assert "schedule Mon–Fri 08:00–18:00 Europe/Paris sets min 4, max 12" in (decision.reason)
    assert decide(scheduled, 14, series(queue=300.0), NOON).desired == 12
    # Wednesday 23:30 and Thursday 05:30 in Paris are in the night window; Thursday 06:30 not.
    assert bounds(scheduled, datetime(2026, 6, 3, 21, 30, tzinfo=UTC))[:2] == (1, 2)
    assert bounds(scheduled, datetime(2026, 6, 4, 3, 30, tzinfo=UTC))[:2] == (1, 2)
    assert bounds(scheduled, datetime(2026, 6, 4, 4, 30, tzinfo=UTC))[:2] == (1, 10)
    # Saturday noon: no window.
    assert bounds(scheduled, datetime(2026, 6, 6, 12, tzinfo=UTC))[:2] == (1, 10)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat,sun", {5, 6}),
        ("Monday, wed", {0, 2}),
        ("fri-mon", {4, 5, 6, 0}),  # wraps around the week
        ("daily", set(range(7))),
        ("mon-fri,sun", {0, 1, 2, 3, 4, 6}),
    ],
)
def test_schedule_days_read_as_people_write_them(days: str, expected: set[int]) -> None:
    window = parse_window(days, "08:00", "18:00", "Europe/Paris", low=3)
    assert window.days == frozenset(expected)
    assert (window.start, window.end, window.min, window.max) == (time(8), time(18), 3, None)


@pytest.mark.parametrize(
    ("days", "described"),
    [("mon-fri", "Mon–Fri"), ("sat,sun", "Sat,Sun"), ("fri-mon", "Mon,Fri–Sun"), ("*", "daily")],
)
def test_schedule_days_read_back_short(days: str, described: str) -> None:
    assert parse_window(days, "08:00", "18:00", high=2).describe().startswith(f"{described} 08")


def test_a_window_may_end_at_24_00_the_midnight_it_runs_to() -> None:
    # "18:00-24:00" had been refused with "use 24-hour HH:MM", which it is.
    window = parse_window("fri", "18:00", "24:00", "UTC", low=2)
    assert (window.start, window.end) == (time(18), time(0))
    friday = datetime(2026, 12, 4, 23, 59, tzinfo=UTC)
    assert window.covers(friday)
    assert not window.covers(friday + timedelta(minutes=1))
    # Shown as written, not as "18:00–00:00", which read as a window of no time.
    assert window.describe() == "Fri 18:00–24:00 UTC"
    assert parse_window("daily", "00:00", "00:00", "UTC", low=2).describe() == (
        "daily 00:00–00:00 UTC"
    )
    # A whole day from 09:00 had read "09:00–09:00", as if it held no time at all.
    whole = parse_window("mon", "09:00", "09:00", "UTC", low=2)
    assert whole.describe() == "Mon 09:00–09:00 the next day UTC"
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert whole.covers(monday) and whole.covers(monday + timedelta(hours=23, minutes=59))
    assert not whole.covers(monday + timedelta(hours=24))
    # A start is 00:00: 24:00 there had been refused as not HH:MM, which it is.
    with pytest.raises(ValueError, match=re.escape("`24:00` may end a window, not start it")):
        parse_window("fri", "24:00", "06:00", "UTC", low=2)


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (("weekdays", "08:00", "18:00", "UTC", 2, None), "days `weekdays`"),
        (("mon-", "08:00", "18:00", "UTC", 2, None), "days `mon-`"),
        (("monkey", "08:00", "18:00", "UTC", 2, None), "days `monkey`"),
        (("mon", "8am", "18:00", "UTC", 2, None), "time `8am`: use 24-hour HH:MM"),
        (("mon", "08:00", "24:30", "UTC", 2, None), "time `24:30`"),
        # Both times wrong: the first one typed is named (the end's `26:00` had been).
        (("mon", "25:00", "26:00", "UTC", 2, None), "time `25:00`"),
        (("mon-xyz", "25:00", "26:00", "UTC", 2, None), "days `mon-xyz`"),
        (("mon", "08:00", "18:00", "Mars/Olympus", 2, None), "unknown timezone `Mars/Olympus`"),
        # zoneinfo imports one package per `/`: 300 of them had ended in a RecursionError.
        (("mon", "08:00", "18:00", "A/" * 300 + "B", 2, None), "unknown timezone `A/A/A/"),
        (("mon", "08:00", "18:00", "../../etc/passwd", 2, None), "unknown timezone"),
        # Zone names are case-sensitive: the one meant is named.
        (("mon", "08:00", "18:00", "europe/paris", 2, None), "did you mean `Europe/Paris`?"),
        (("mon", "08:00", "18:00", "UTC", None, None), "needs `min:`, `max:` or both"),
        (("mon", "08:00", "18:00", "UTC", 5, 2), "min (5) is more than its max (2)"),
    ],
)
def test_a_bad_schedule_window_says_which_word_is_wrong(words: tuple, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_window(*words)


def test_a_pin_holds_its_count_until_it_expires() -> None:
    pin = Pin(5, NOON + timedelta(hours=2), by="@ana")
    decision = decide(QUEUE, 3, series(queue=2000.0), NOON, pin=pin)
    assert decision.desired == 5
    assert decision.reason == "pinned by @ana at web=5 until 14:00 UTC → web 3→5"
    expired = Pin(5, NOON - timedelta(seconds=1))
    assert decide(QUEUE, 3, series(queue=2000.0), NOON, pin=expired).desired == 7
    assert decide(QUEUE, 3, series(), NOON, pin=Pin(50, NOON + timedelta(hours=1))).desired == 20


def test_the_registry_max_step_bounds_every_kind_of_decision() -> None:
    # A pin, a schedule window's min or a stale tick could ask for more than the guardrail
    # lets one command move, and the whole scale was then refused.
    stepped = replace(QUEUE, max_step=2, max_dynos=40)
    pinned = decide(stepped, 3, series(), NOON, pin=Pin(10, NOON + timedelta(hours=1)))
    assert (pinned.desired, pinned.recommendation) == (5, 10)
    assert pinned.reason == (
        "pinned at web=10 until 13:00 UTC (the registry's max_step allows 2 at a time; "
        "10 wanted) → web 3→5"
    )
    window = Window(frozenset(range(7)), time(0), time(0), "UTC", min=8)
    stale = decide(replace(stepped, windows=(window,)), 3, [], NOON)
    assert stale.desired == 5 and "max_step allows 2" in stale.reason
    slow = decide(stepped, 3, series(queue=2000.0), NOON)
    assert slow.desired == 5 and "7 wanted" in slow.reason


def test_the_forecast_scales_ahead_but_is_not_a_recommendation() -> None:
    predictive = Settings(targets=RPM.targets, max_dynos=40, predictive=True)
    rise = Forecast(growth=1.6, skill=0.5)
    decision = decide(predictive, 5, series(rpm=4800.0), NOON, forecast=rise)
    assert decision.desired == 8  # ceil(4800 * 1.6 / 1000)
    assert decision.recommendation == 5
    assert decision.forecast_rpm == pytest.approx(7680.0)
    assert (
        "4,800 rpm now, 7,680 expected in 2 min (same time yesterday and last week) → web 5→8"
        in decision.reason
    )
    # While it still expects the rise, it holds; once it does not, the dynos go at once.
    assert decide(predictive, 8, series(rpm=4800.0), NOON, forecast=rise).desired == 8
    assert decide(predictive, 8, series(rpm=4800.0), NOON, forecast=Forecast(1.0, 0.5)).desired == 7
    # Switched off, unskilled, or within the band: ignored.
    assert decide(RPM, 5, series(rpm=4800.0), NOON, forecast=rise).desired == 5
    unskilled = Forecast(growth=1.6, skill=-0.2)
    assert decide(predictive, 5, series(rpm=4800.0), NOON, forecast=unskilled).desired == 5
    small = Forecast(growth=1.05, skill=0.9)
    assert decide(predictive, 5, series(rpm=4800.0), NOON, forecast=small).desired == 5


def _minute(at: datetime) -> int:
    return int(at.timestamp() // 60)


def test_seasonal_growth_and_skill_from_per_minute_history() -> None:
    predictive = Settings(targets=RPM.targets, predictive=True)
    now = NOON
    last = _minute(now) - 1
    day, week = 24 * 60, 7 * 24 * 60

    # Every day at 12:00 traffic doubles; the minute before noon is the last whole minute.
    def traffic(minute: int) -> float:
        return 2000.0 if (minute % day) >= 12 * 60 else 1000.0

    history = {m: traffic(m) for m in range(last - week - 200, last + 121)}
    assert forecast_growth(predictive, history, now - timedelta(minutes=1)) == pytest.approx(2.0)
    assert forecast_growth(predictive, history, now - timedelta(minutes=30)) == pytest.approx(1.0)
    # The same history predicted yesterday's rise perfectly, and "no change" missed it.
    assert forecast_skill(predictive, history, now + timedelta(hours=1)) == pytest.approx(1.0)
    # Just before today's rise the morning was flat: no evidence either way, so skill 0,
    # which is enough by default (the first rise of the day is the one worth forecasting).
    forecast = seasonal_forecast(predictive, history, now - timedelta(minutes=1))
    assert forecast == Forecast(growth=pytest.approx(2.0), skill=0.0, base_rpm=1000.0)
    # Nothing a day or a week back: no forecast.
    assert forecast_growth(predictive, {last: 1.0}, now) is None
    assert seasonal_forecast(predictive, {}, now) is None
    # Traffic that did not do what the seasons said scores below zero.
    noisy = dict(history)
    for m in range(last - 180, last + 121):
        noisy[m] = 1000.0
    assert forecast_skill(predictive, noisy, now + timedelta(minutes=60)) < 0
    assert history_minutes(RPM, now) == ()
    assert len(history_minutes(predictive, now)) == 3


# ---- properties over arbitrary series ----------------------------------------------

metric_values = st.one_of(st.none(), st.floats(min_value=0, max_value=60_000))


@st.composite
def situations(draw):  # type: ignore[no-untyped-def]
    low = draw(st.integers(min_value=0, max_value=10))
    high = draw(st.integers(min_value=max(low, 1), max_value=40))
    targets = draw(
        st.lists(
            st.sampled_from(
                [
                    Target("queue_p95", 300.0),
                    Target("service_p95", 200.0),
                    Target("rpm_per_dyno", 900.0),
                ]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    config = Settings(
        targets=tuple(targets),
        tolerance=draw(st.sampled_from([0.0, 0.05, 0.1, 0.3])),
        min_dynos=low,
        max_dynos=high,
        predictive=draw(st.booleans()),
    )
    current = draw(st.integers(min_value=0, max_value=60))
    ages = draw(st.lists(st.integers(min_value=0, max_value=600), min_size=0, max_size=8))
    samples = [
        Sample(
            NOON - timedelta(seconds=age),
            draw(st.floats(min_value=0, max_value=100_000)),
            draw(metric_values),
            draw(metric_values),
        )
        for age in sorted(ages, reverse=True)
    ]
    recommendations = [
        Recommendation(NOON - timedelta(seconds=draw(st.integers(0, 600))), count)
        for count in draw(st.lists(st.integers(0, 60), max_size=5))
    ]
    events = [
        ScaleEvent(NOON - timedelta(seconds=draw(st.integers(0, 300))), before, after)
        for before, after in draw(
            st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=3)
        )
    ]
    booting = draw(st.one_of(st.none(), st.integers(0, 10)))
    forecast = draw(
        st.one_of(
            st.none(),
            st.builds(
                Forecast,
                st.floats(min_value=0, max_value=10),
                st.floats(min_value=-2, max_value=1),
            ),
        )
    )
    return config, current, samples, recommendations, events, booting, forecast


def _run(situation):  # type: ignore[no-untyped-def]
    config, current, samples, recommendations, events, booting, forecast = situation
    decision = decide(
        config,
        current,
        samples,
        NOON,
        recommendations=recommendations,
        events=events,
        booting=booting,
        forecast=forecast,
    )
    assert decision.reason
    return decision


@settings(max_examples=400, deadline=None)
@given(situations())
def test_never_below_min_or_above_max(situation) -> None:  # type: ignore[no-untyped-def]
    config = situation[0]
    decision = _run(situation)
    assert config.min_dynos <= decision.desired <= config.max_dynos


@settings(max_examples=400, deadline=None)
@given(situations())
def test_never_scales_down_on_stale_data(situation) -> None:  # type: ignore[no-untyped-def]
    config, current, samples = situation[:3]
    stale_samples = [
        Sample(s.at - config.stale_after - timedelta(seconds=1), s.rpm, s.queue_p95_ms)
        for s in samples
    ]
    decision = _run((config, current, stale_samples, *situation[3:]))
    assert decision.stale
    # Only the max may bring it down, and only the min up: the metrics move nothing.
    assert decision.desired == min(max(current, config.min_dynos), config.max_dynos)


@settings(max_examples=400, deadline=None)
@given(situations(), st.floats(min_value=-1, max_value=1))
def test_within_tolerance_no_change(situation, where) -> None:  # type: ignore[no-untyped-def]
    config, current = situation[:2]
    if not (config.min_dynos <= current <= config.max_dynos) or current == 0:
        return
    # Every metric of every target sits inside the band, in the newest sample and the rest.
    offset = 1 + where * config.tolerance * 0.99
    rpm = 900.0 * offset * current
    steady = [
        Sample(NOON - timedelta(seconds=15 * i), rpm, 300.0 * offset, 200.0 * offset)
        for i in range(5)
    ][::-1]
    # The HPA rule's band: with a window set by hand, nothing else moves the count. The
    # default also keeps room for the rate's noise, which may add dynos but never sheds one.
    fixed = replace(config, down_stabilization=timedelta(minutes=5))
    decision = _run((fixed, current, steady, *situation[3:6], None))
    assert decision.desired == current
    assert _run((config, current, steady, *situation[3:6], None)).desired >= current


@settings(max_examples=400, deadline=None)
@given(situations())
def test_step_limits_hold(situation) -> None:  # type: ignore[no-untyped-def]
    config, current = situation[:2]
    decision = _run(situation)
    inside = min(max(current, config.min_dynos), config.max_dynos)
    up = max(-(-current * int(config.up_max_percent) // 100), config.up_max_dynos)
    down = max(current * int(config.down_max_percent) // 100, config.down_max_dynos)
    # Beyond the bounds' own correction, no tick moves further than a step.
    assert decision.desired <= max(current + up, inside)
    if not _level_fall(config, situation[2]):
        assert decision.desired >= min(current - down, inside)


@settings(max_examples=400, deadline=None)
@given(situations())
def test_stabilization_holds(situation) -> None:  # type: ignore[no-untyped-def]
    config, current, _, recommendations = situation[:4]
    decision = _run(situation)
    window_start = NOON - stabilization(config, situation[2])
    recent = [r.count for r in recommendations if r.at > window_start]
    if decision.stale or not recent or decision.desired >= current:
        return
    if _level_fall(config, situation[2]):
        return  # a new level is taken at once (test_a_fall_beyond_the_noise_…)
    # A scale-down never goes below what the stabilization window asked for (within the max).
    assert decision.desired >= min(max(recent), current, config.max_dynos)


def _level_fall(config: Settings, samples: list[Sample]) -> bool:
    return config.down_stabilization is None and fell_beyond_noise(samples, NOON, config)


def _minutes_of(rates: list[float]) -> list[Sample]:
    return [
        Sample(NOON - timedelta(minutes=len(rates) - 1 - i), rpm) for i, rpm in enumerate(rates)
    ]


def test_the_default_stabilization_adapts_to_how_jumpy_traffic_is() -> None:
    steady = _minutes_of([1000.0, 1010.0, 995.0, 1005.0, 1000.0])
    jumpy = _minutes_of([1000.0, 1400.0, 900.0, 1300.0, 800.0])
    step = _minutes_of([1000.0, 1000.0, 2000.0, 2000.0, 2000.0])  # a level change, not noise
    assert RPM.down_stabilization is None
    assert timedelta(minutes=1) <= stabilization(RPM, steady) < timedelta(minutes=1, seconds=30)
    assert stabilization(RPM, jumpy) == RPM.down_stabilization_max == timedelta(minutes=5)
    assert volatility(step) == 0.0
    assert stabilization(RPM, _minutes_of([1000.0])) == timedelta(minutes=1)  # too few
    # A set window is kept whatever the traffic.
    fixed = replace(RPM, down_stabilization=timedelta(minutes=2))
    assert stabilization(fixed, jumpy) == timedelta(minutes=2)
    # The same fall is taken after 2 minutes on steady traffic and held on jumpy traffic.
    recent = [Recommendation(NOON - timedelta(minutes=2), 6)]
    calm = _minutes_of([3000.0, 3020.0, 2990.0, 3010.0, 3000.0])
    assert decide(RPM, 6, calm, NOON, recommendations=recent).desired == 5
    wild = _minutes_of([3000.0, 4500.0, 2500.0, 4000.0, 3000.0])
    held = decide(RPM, 6, wild, NOON, recommendations=recent)
    # Not down: the allowance for noise this wild asks for more, not fewer.
    assert held.desired >= 6
    assert "asked for up to 6" in held.reason or "of noise (2 deviations)" in held.reason


def test_a_rate_target_scales_again_while_the_last_dynos_boot() -> None:
    # rate / formation already counts the booting dynos, so a second step is no double pay.
    up = [ScaleEvent(NOON - timedelta(seconds=15), 2, 6)]
    busy = series(rpm=10_000.0)
    assert decide(RPM, 6, busy, NOON, events=up, booting=4).desired == 10


# Fifteen minutes of a busy batch job, its rate wobbling by about 2 % a minute.
BUSY = [6000.0, 6100.0, 5950.0, 6050.0, 6020.0, 5900.0, 6080.0, 5990.0, 6040.0, 5960.0]
BUSY += [6030.0, 6010.0, 5970.0, 6060.0]


def test_a_fall_beyond_the_noise_is_taken_at_once() -> None:
    # The job ends: its last minute is far below what noise explains, so the count drops
    # to what the new rate needs in one tick, without the stabilization hold or step limit.
    samples = _minutes_of([*BUSY, 1200.0])
    assert noise(samples) < 100  # the largest change (the fall) is left out
    assert fell_beyond_noise(samples, NOON, RPM)
    recent = [Recommendation(NOON - timedelta(minutes=m), 7) for m in (3, 2, 1)]
    decision = decide(RPM, 7, samples, NOON, recommendations=recent)
    assert decision.desired == 2  # ceil(1,200 / 1,000)
    assert "fell beyond its noise" in decision.reason
    # A window the user set is theirs: the same fall waits it out.
    fixed = replace(RPM, down_stabilization=timedelta(minutes=5))
    assert decide(fixed, 7, samples, NOON, recommendations=recent).desired == 7


def test_no_scale_down_on_a_dip_within_volatile_traffic() -> None:
    # Traffic that jumps by a third from minute to minute: a minute as low as the last is
    # noise, so the count waits out the (long, volatile) stabilization window.
    volatile = [6000.0, 4200.0, 7000.0, 4800.0, 6500.0, 4000.0, 6800.0, 5000.0, 7200.0]
    volatile += [4400.0, 6600.0, 4900.0, 7100.0, 5200.0]
    samples = _minutes_of([*volatile, 3800.0])
    assert not fell_beyond_noise(samples, NOON, RPM)
    assert stabilization(RPM, samples) == RPM.down_stabilization_max
    recent = [Recommendation(NOON - timedelta(minutes=m), 8) for m in (4, 2, 1)]
    held = decide(RPM, 8, samples, NOON, recommendations=recent)
    assert held.desired >= 8  # the allowance for noise this large asks for more, not fewer
    assert "asked for up to 8" in held.reason or "of noise (2 deviations)" in held.reason


def test_a_gradual_fall_is_not_a_new_level() -> None:
    # Falling 2 % a minute is a trend the hold and step limit follow, not a jump.
    gradual = [6000.0 * 0.98**i for i in range(15)]
    samples = _minutes_of(gradual)
    assert not fell_beyond_noise(samples, NOON, RPM)
    recent = [Recommendation(NOON - timedelta(seconds=30), 6)]
    assert decide(RPM, 6, samples, NOON, recommendations=recent).desired == 6


def test_noise_is_one_deviation_of_the_minute_rate_and_at_least_poisson() -> None:
    assert noise(_minutes_of([1000.0])) == 0.0  # nothing to compare
    # A perfectly flat count still has Poisson noise: √1,000 ≈ 31.6 requests a minute.
    assert noise(_minutes_of([1000.0] * 6)) == pytest.approx(1000**0.5)
    # Alternating ±300 around 10,000: every change is 600, so σ = 600·√π/2 ≈ 532.
    alternating = [10_000.0 + (300 if i % 2 else -300) for i in range(10)]
    assert noise(_minutes_of(alternating)) == pytest.approx(600 * 3.14159265**0.5 / 2, rel=1e-4)
    # Samples every 15 s count in the minute they end: four of them make one minute.
    ticks = [Sample(NOON - timedelta(seconds=15 * i), 2000.0) for i in range(8)][::-1]
    assert noise(ticks) == pytest.approx(2000**0.5)


def test_the_forecast_grows_the_minute_it_was_measured_from() -> None:
    # Yesterday the rate tripled over these two minutes; today it has already tripled in
    # the newest 15 s. The growth starts from the last whole minute (1,000 rpm), so it
    # expects 3,000, not 3 × 3,000: the same rise is not counted twice.
    predictive = Settings(targets=RPM.targets, max_dynos=40, predictive=True)
    samples = series(rpm=1000.0)
    samples[-1] = Sample(NOON, 3000.0, None, None)
    risen = decide(predictive, 2, samples, NOON, forecast=Forecast(3.0, 0.5, base_rpm=1000.0))
    assert risen.desired == 3  # the reactive answer, ceil(3,000 / 1,000)
    doubled = decide(predictive, 2, samples, NOON, forecast=Forecast(3.0, 0.5))
    # Without a base, the growth lands on the fresh 3,000 rpm: 9 wanted, +4 allowed.
    assert doubled.desired == 6
    # Before the rise, the forecast asks ahead from that minute's rate.
    calm = decide(predictive, 1, series(rpm=1000.0), NOON, forecast=Forecast(3.0, 0.5, 1000.0))
    assert calm.desired == 3 and calm.forecast_rpm == pytest.approx(3000.0)
    # `forecast_base` reads that minute from the per-minute history.
    assert forecast_base({_minute(NOON) - 1: 1000.0}, NOON) == 1000.0
    assert forecast_base({}, NOON) is None


def test_the_default_keeps_room_for_the_rates_noise() -> None:
    # 4,500 rpm a minute on average, wobbling by ±300: five dynos carry the mean within
    # the band (900 a dyno against 1,000), but not the wobbles, which put a dyno at the
    # band's edge (the SLO) and call a scale-up a drain lag and a boot too late.
    wobbly = _minutes_of([4500.0 + (300.0 if i % 2 else -300.0) for i in range(14)] + [4500.0])
    room = headroom(RPM, wobbly, NOON)
    assert room is not None and room.rate == 4500.0
    assert room.allowance > 600.0  # 2 deviations of a ±300 wobble
    assert room.count == 6 == math.ceil((room.rate + room.allowance) / 1100)
    decision = decide(RPM, 5, wobbly, NOON)
    assert decision.desired == 6
    assert "4,500 rpm and" in decision.reason
    assert "of noise (2 deviations) need 6" in decision.reason
    # Nor is a dyno shed that the wobbles need: the recommendation stays at the floor.
    assert decide(RPM, 6, wobbly, NOON).desired == 6
    # A window set by hand is the HPA's rule alone: the mean is within the band, no change.
    fixed = replace(RPM, down_stabilization=timedelta(minutes=5))
    assert headroom(fixed, wobbly, NOON) is None
    assert decide(fixed, 5, wobbly, NOON).desired == 5


def test_steady_traffic_needs_no_more_than_the_hpa_rule() -> None:
    # Only Poisson noise (√4,500 ≈ 67 a minute): the allowance fits in the band.
    steady = _minutes_of([4500.0] * 15)
    room = headroom(RPM, steady, NOON)
    # Two deviations of the next minute from a level that is the mean of all 15 minutes.
    assert room is not None and room.allowance == pytest.approx(2 * 4500**0.5 * (16 / 15) ** 0.5)
    assert room.count == 5
    assert decide(RPM, 5, steady, NOON).desired == 5  # 900 a dyno: within the band


def test_a_ramp_is_not_noise() -> None:
    # Rising 200 rpm every minute: every change is 200, but the trend explains all of it.
    ramp = _minutes_of([2000.0 + 200.0 * i for i in range(15)])
    assert noise(ramp) == pytest.approx(200 * math.pi**0.5 / 2)
    assert noise_detrended(ramp) == pytest.approx(
        (sum(2000.0 + 200 * i for i in range(15)) / 15) ** 0.5
    )


def test_the_level_is_the_mean_since_the_rate_last_stepped() -> None:
    assert rate_level([], 50.0) == (0.0, 1)
    flat = [1000.0, 1040.0, 960.0, 1010.0, 990.0]
    assert rate_level(flat, 50.0) == (pytest.approx(1000.0), 5)
    # A step up three minutes ago: the level is the mean of the minutes after it.
    step = [1000.0, 990.0, 1010.0, 2000.0, 2040.0, 1960.0]
    assert rate_level(step, 50.0) == (pytest.approx(2000.0), 3)
    # A fall in the newest minute is a new level of one minute.
    assert rate_level([2000.0, 2010.0, 1990.0, 1000.0], 50.0) == (1000.0, 1)
    # The same wobble within a larger noise is one level.
    assert rate_level(step, 600.0)[1] == 6
    # A fall the noise cannot explain (a crowd leaving) is a trend: the level is where the
    # line ends, not the mean that lags it, and counts fewer minutes than it spans.
    falling = [3000.0 - 100.0 * i + (20.0 if i % 2 else -20.0) for i in range(10)]
    level, minutes = rate_level(falling, 300.0)
    assert level == pytest.approx(2100.0, abs=20.0) and 1 <= minutes < 10
    # The same minutes within a noise that explains the slope: their mean.
    assert rate_level(falling, 2000.0) == (pytest.approx(sum(falling) / 10), 10)


def test_the_allowance_counts_the_levels_own_error() -> None:
    # One level over 15 minutes errs by σ/√15; a level of one minute by σ, so the same
    # noise after a step asks for more room than on a long plateau.
    plateau = _minutes_of([4500.0 + (100.0 if i % 2 else -100.0) for i in range(15)])
    stepped = _minutes_of([2000.0 + (100.0 if i % 2 else -100.0) for i in range(14)] + [4500.0])
    long, short = headroom(RPM, plateau, NOON), headroom(RPM, stepped, NOON)
    assert long is not None and short is not None
    sigma = noise_detrended(plateau)
    assert long.allowance == pytest.approx(2 * sigma * (1 + 1 / 15) ** 0.5)
    assert short.rate == 4500.0
    assert short.allowance == pytest.approx(2 * noise_detrended(stepped) * 2**0.5)


def test_the_detrended_noise_reads_one_deviation_of_gaussian_minutes() -> None:
    # Seeded Gaussian minutes of deviation 500 around 20,000 (Poisson's √20,000 ≈ 141 is
    # far below): averaged over many 30-minute spans, the measure reads 500, where the
    # mean of the |second differences| less the largest two read about a fifth low.
    rng = random.Random(7)
    readings = []
    for _ in range(300):
        rates = [rng.gauss(20_000.0, 500.0) for _ in range(30)]
        readings.append(noise_detrended(_minutes_of(rates)))
    assert sum(readings) / len(readings) == pytest.approx(500.0, rel=0.06)
    # A step of ten deviations inside the span hardly moves it.
    rates = [rng.gauss(20_000.0, 500.0) for _ in range(15)]
    rates += [rng.gauss(25_000.0, 500.0) for _ in range(15)]
    assert noise_detrended(_minutes_of(rates)) < 800.0


def test_one_low_reading_beside_a_whole_minute_at_the_level_is_not_a_fall() -> None:
    # The whole minute is at the job's level and only the freshest 20 s reads low: a dip
    # (the fresh reading wobbles more than a minute), not a new level. Every reading of
    # the last minute has to fall for the count to drop at once.
    minutes = [
        Sample(NOON - timedelta(seconds=20) - timedelta(minutes=len(BUSY) - i), rpm)
        for i, rpm in enumerate([*BUSY, 6000.0])
    ]
    assert not fell_beyond_noise([*minutes, Sample(NOON, 1200.0)], NOON, RPM)
    fell = [*minutes[:-1], Sample(NOON - timedelta(seconds=20), 1300.0), Sample(NOON, 1200.0)]
    assert fell_beyond_noise(fell, NOON, RPM)


def test_a_reading_that_more_than_doubles_the_rate_takes_the_whole_step() -> None:
    # 2 dynos, and the freshest reading says 5,000 rpm (5 wanted at 1,000 per dyno): that
    # reading straddles the step, so the tick asks for the whole +4 at once.
    samples = series(rpm=1000.0)
    samples[-1] = Sample(NOON, 5000.0, None, None)
    decision = decide(RPM, 2, samples, NOON)
    assert decision.desired == 6
    assert "(a step to a new level: +4 at once; 5 asked)" in decision.reason
    # A window the user set is the HPA's rule alone: 5, as the reading asks.
    fixed = replace(RPM, down_stabilization=timedelta(minutes=5))
    assert decide(fixed, 2, samples, NOON).desired == 5
    # Less than double is an ordinary rise.
    samples[-1] = Sample(NOON, 3500.0, None, None)
    assert decide(RPM, 2, samples, NOON).desired == 4


def test_a_raised_minimum_is_met_not_overshot_by_the_whole_step() -> None:
    # The whole step at once is for a reading that more than doubles what runs; a window's
    # min or `min_dynos` lifting the count had taken it too (2→6 with "5 asked").
    office = Window(frozenset(range(7)), time(0), time(23, 59), "UTC", min=5, max=12)
    assert decide(replace(RPM, windows=(office,)), 2, series(rpm=1000.0), NOON).desired == 5
    assert decide(replace(RPM, min_dynos=5), 2, series(rpm=1000.0), NOON).desired == 5


def _latency_walk(start: int, rpm: float, served_per_dyno: float, minutes: int) -> list[int]:
    """A closed loop on a queue-time target: ticks every 15 s at a steady `rpm`; each whole
    minute's sample counts the dynos that served in it (as the drain does) and its p95 queue
    is 0 ms while they carry at most `served_per_dyno` each, 3 s beyond. The count after each
    tick."""
    now, current = NOON, start
    history = [Sample(now - timedelta(minutes=m), rpm, 0.0, 80.0, start) for m in (3, 2, 1, 0)]
    recommendations: list[Recommendation] = []
    events: list[ScaleEvent] = []
    counts, fewest, most = [], current, current
    for tick in range(1, minutes * 4 + 1):
        now = NOON + timedelta(seconds=15 * tick)
        if tick % 4 == 0:
            queue = 0.0 if rpm / fewest <= served_per_dyno else 3000.0
            history.append(Sample(now, rpm, queue, 80.0, most))
            fewest = most = current
        decision = decide(
            QUEUE, current, history[-30:], now, recommendations=recommendations, events=events
        )
        recommendations.append(Recommendation(now, decision.recommendation))
        if decision.desired != current:
            events.append(ScaleEvent(now, current, decision.desired))
            current = decision.desired
        fewest, most = min(fewest, current), max(most, current)
        counts.append(current)
    return counts


def test_a_queue_target_does_not_walk_down_below_what_carries_the_traffic() -> None:
    # An over-provisioned app has ~0 ms queue, so the HPA rule asks for the minimum at every
    # tick and the scale-down walked 10→1 a dyno per 15 s tick, until the queue broke 3 s
    # and it jumped back up: a flap, every few minutes. A count is left only once it has
    # been seen to carry the rate within the target, so the walk stops at the fewest that
    # do (4 at 2,500 rpm and 800 per dyno), having tried 3 once.
    counts = _latency_walk(start=10, rpm=2500.0, served_per_dyno=800.0, minutes=30)
    assert min(counts) == 3
    tries = [run for run, _ in itertools.groupby(c <= 3 for c in counts) if run]
    assert len(tries) == 1  # 3 broke the target once and was not tried again
    assert counts[-40:] == [4] * 40  # the last 10 minutes: steady
    # A count seen to carry the traffic is left a step at a time, each step waiting to
    # be seen to carry it too: 10→4 took 10 minutes, not 90 s.
    assert counts[:8] == [9] * 7 + [8]
