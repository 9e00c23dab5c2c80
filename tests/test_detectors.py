"""policies.detectors: each detector's thresholds, their edges, gaps in the data, and that
quiet traffic is never an alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.detectors import (
    DEFAULT_DETECTOR_RULES,
    AppState,
    DetectorRules,
    Health,
    Minute,
    ScaleDecision,
    complete_minutes,
    detect,
    errors,
    health,
    newest_complete_start,
    pinned,
    router_errors,
    slow,
    stale,
)

# A tick 30 s into a minute: the newest complete minute is the one that began at 12:00.
NOW = datetime(2026, 11, 29, 12, 1, 30, tzinfo=UTC)
NEWEST = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def minute(back: int, **fields) -> Minute:
    """The minute `back` minutes before the newest complete one."""
    return Minute(start=NEWEST - timedelta(minutes=back), **fields)


def subjects(events) -> list[tuple[str, str]]:
    return [(e.kind, e.subject) for e in events]


# -- which minutes count ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "newest"),
    [
        (datetime(2026, 11, 29, 12, 1, 30, tzinfo=UTC), "12:00"),
        (datetime(2026, 11, 29, 12, 1, 10, tzinfo=UTC), "12:00"),  # ended exactly `settle` ago
        (datetime(2026, 11, 29, 12, 1, 9, tzinfo=UTC), "11:59"),  # not settled yet
        (datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC), "11:58"),
    ],
)
def test_a_minute_counts_once_it_has_settled(now, newest):
    assert newest_complete_start(now).strftime("%H:%M") == newest
    data = [Minute(start=datetime(2026, 11, 29, 11, m, tzinfo=UTC)) for m in (58, 59)]
    data.append(Minute(start=datetime(2026, 11, 29, 12, 0, tzinfo=UTC)))
    kept = complete_minutes(data, now)
    assert max(kept).strftime("%H:%M") == newest


# -- router errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"H12": 10}, ["H12"]),  # exactly at the threshold
        ({"H12": 9}, []),
        ({"H12": 9, "H13": 9}, []),  # each code on its own
        ({"H10": 30, "H27": 11, "H13": 2}, ["H10"]),
        ({"H27": 5000}, []),  # the client closed the request: noise, not the app's fault
        ({"H14": 50}, []),  # not a code we alert on
        ({}, []),
    ],
)
def test_router_error_bursts_per_code(codes, expected):
    events = router_errors("myapp", [minute(0, requests=100, codes=codes)], NOW)
    assert [e.subject for e in events] == expected
    assert all(e.kind == "router_error" and e.at == NOW for e in events)


def test_a_burst_in_the_minute_before_still_counts_and_the_worst_minute_is_named():
    data = [minute(1, codes={"H12": 25}), minute(0, codes={"H12": 12})]
    [event] = router_errors("myapp", data, NOW)
    assert event.detail == (
        "25 H12 (request timeout) in the minute from 11:59 UTC, threshold 10 a minute."
    )
    # Two minutes back is over: the burst has passed.
    assert router_errors("myapp", [minute(2, codes={"H12": 25})], NOW) == []


def test_a_burst_in_the_minute_still_filling_waits_for_the_next_tick():
    filling = Minute(start=NEWEST + timedelta(minutes=1), codes={"H12": 40})
    assert router_errors("myapp", [filling], NOW) == []


# -- slow responses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p95s", "fires"),
    [
        ([2400, 2400, 2400], True),
        ([2000, 2400, 2400], False),  # the oldest at the threshold, not over it
        ([2400, 2400, 2000], False),  # the newest at the threshold
        ([2400, 2400], False),  # two minutes only
        ([2400, None, 2400, 2400, 2400], True),  # the run is the newest three
        ([2400, 2400, None, 2400], False),  # a minute without timings breaks the run
        ([900, 2001, 2001, 2001], True),
    ],
)
def test_slow_needs_p95_over_for_three_consecutive_minutes(p95s, fires):
    data = [
        minute(len(p95s) - 1 - i, requests=50, service_p95_ms=p95)
        for i, p95 in enumerate(p95s)
        if p95 is not None
    ]
    events = slow("myapp", data, NOW)
    assert subjects(events) == ([("slow", "web p95")] if fires else [])


def test_slow_detail_names_the_latest_p95_and_the_whole_run():
    data = [minute(back, requests=50, service_p95_ms=2400) for back in range(5)]
    [event] = slow("myapp", data, NOW)
    assert event.detail == "p95 service 2.4 s > 2 s."


def test_a_gap_in_the_data_breaks_the_slow_run():
    # Minutes 0, 1 and 3 slow, minute 2 missing (no traffic at all).
    data = [minute(b, requests=50, service_p95_ms=3000) for b in (0, 1, 3)]
    assert slow("myapp", data, NOW) == []


def test_a_few_slow_requests_are_not_slow_responses():
    data = [minute(b, requests=4, service_p95_ms=9000) for b in range(3)]
    assert slow("myapp", data, NOW) == []
    data = [minute(b, requests=5, service_p95_ms=9000) for b in range(3)]
    assert len(slow("myapp", data, NOW)) == 1


# -- 5xx rate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_minute", "fires"),
    [
        ([(100, 6)] * 3, True),
        ([(100, 5)] * 3, False),  # exactly 5 %: not over
        ([(20, 2)] * 3, True),  # exactly 20 requests is enough
        ([(19, 19)] * 3, False),  # too few requests to judge, however bad
        ([(100, 50), (100, 50)], False),  # two minutes
        ([(100, 0), (100, 6), (100, 6), (100, 6)], True),
        ([(100, 6), (100, 6), (100, 0), (100, 6)], False),
        ([(0, 0)] * 3, False),  # no traffic is not an error
    ],
)
def test_errors_need_a_rate_over_five_percent_for_three_minutes(per_minute, fires):
    data = [
        minute(len(per_minute) - 1 - i, requests=requests, errors=bad)
        for i, (requests, bad) in enumerate(per_minute)
    ]
    events = errors("myapp", data, NOW)
    assert subjects(events) == ([("errors", "web")] if fires else [])


def test_errors_detail():
    data = [minute(b, requests=200, errors=30) for b in range(3)]
    [event] = errors("myapp", data, NOW)
    assert event.detail == "5xx rate 15 % (30 of 200) > 5 %."


def test_the_maintenance_page_is_no_5xx_of_the_app():
    # `/deploy maintenance APP on`: Heroku's router answers every request with its page,
    # logged `at=info code=H80 ... status=503`. The site is offline on purpose, so those
    # are not the app failing: the channel had been told "5xx rate 100 %" three minutes on.
    offline = [minute(b, requests=300, errors=300, codes={"H80": 300}) for b in range(3)]
    assert errors("myapp", offline, NOW) == []
    # Requests the app itself served still count, and the detail names only them.
    mixed = [minute(b, requests=300, errors=112, codes={"H80": 100}) for b in range(3)]
    [event] = errors("myapp", mixed, NOW)
    assert event.detail == "5xx rate 6 % (12 of 200) > 5 %."


@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 500)).map(lambda t: (max(t), min(t))),
        min_size=0,
        max_size=8,
    )
)
def test_errors_fire_exactly_when_the_newest_three_minutes_are_each_bad(per_minute):
    data = [
        minute(len(per_minute) - 1 - i, requests=requests, errors=bad)
        for i, (requests, bad) in enumerate(per_minute)
    ]
    newest_three = per_minute[-3:]
    bad = len(newest_three) == 3 and all(r >= 20 and e / r > 0.05 for r, e in newest_three)
    assert bool(errors("myapp", data, NOW)) == bad


@given(st.lists(st.integers(0, 10_000), max_size=10))
def test_traffic_without_errors_codes_or_slowness_never_alerts(requests):
    data = [
        minute(b, requests=n, errors=0, service_p95_ms=100.0 if n else None)
        for b, n in enumerate(requests)
    ]
    state = AppState("myapp", minutes=tuple(data))
    assert detect(state, NOW) == []


# -- autoscaler pinned at max -----------------------------------------------------------


def ticks(wanted: list[int], every: int = 15, newest_back: int = 0) -> list[ScaleDecision]:
    """Decisions every `every` seconds, oldest first, the newest `newest_back` s before NOW."""
    newest = NOW - timedelta(seconds=newest_back)
    count = len(wanted)
    return [
        ScaleDecision(newest - timedelta(seconds=every * (count - 1 - i)), desired)
        for i, desired in enumerate(wanted)
    ]


@pytest.mark.parametrize(
    ("decisions", "fires"),
    [
        (ticks([6] * 41), True),  # 40 intervals of 15 s: exactly 10 minutes
        (ticks([6] * 40), False),  # 9 min 45 s
        (ticks([5] + [6] * 41), True),
        (ticks([6] * 20 + [5] + [6] * 20), False),  # one tick below the max breaks it
        (ticks([6] * 41, newest_back=180), False),  # the autoscaler stopped deciding
        (ticks([6] * 11, every=60), True),  # a slower tick, still 10 minutes
        (ticks([6] * 4, every=200), False),  # gaps over 2 minutes: not known to be pinned
        ([], False),
    ],
)
def test_pinned_when_every_decision_wanted_the_max_for_ten_minutes(decisions, fires):
    events = pinned("myapp", decisions, 6, NOW)
    assert subjects(events) == ([("pinned", "web")] if fires else [])


def test_pinned_detail_and_a_fixed_count_is_never_pinned():
    [event] = pinned("myapp", ticks([6] * 61), 6, NOW)
    assert event.detail == "The autoscaler wants its max of 6 web."
    assert pinned("myapp", ticks([6] * 61), 6, NOW, minimum=6) == []


# -- metrics stale ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("newest_ago", "watched_ago", "fires"),
    [
        (60, 3600, False),
        (300, 3600, False),  # exactly 5 minutes: not older than
        (301, 3600, True),
        (None, 3600, True),  # never any metrics
        (None, 120, False),  # just turned on: give them time to arrive
        (7200, 240, False),  # old windows, but watching began 4 minutes ago
        (7200, 360, True),
        (7200, None, False),  # nobody expects metrics: no alert
    ],
)
def test_stale_metrics(newest_ago, watched_ago, fires):
    newest = NOW - timedelta(seconds=newest_ago) if newest_ago is not None else None
    watched = NOW - timedelta(seconds=watched_ago) if watched_ago is not None else None
    events = stale("myapp", newest, watched, NOW)
    assert subjects(events) == ([("stale", "traffic")] if fires else [])


def test_stale_details():
    [old] = stale("myapp", NOW - timedelta(minutes=7), NOW - timedelta(hours=1), NOW)
    assert old.detail == "The newest traffic window ended 7 min ago at 11:54 UTC, limit 5 min."
    [never] = stale("myapp", None, NOW - timedelta(minutes=12), NOW)
    assert never.detail == "No traffic window has arrived in the 12 min since it was expected."


# -- Beanstalk health -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "subject", "severity", "detail"),
    [
        (Health("Green", "Ok"), None, None, None),
        (Health(None), None, None, None),
        (
            Health("Red", "Severe", ("100.0 % of the requests are failing with HTTP 5xx.",)),
            "Red",
            "critical",
            "Health Severe (Red), 1 cause: 100.0 % of the requests are failing with HTTP 5xx.",
        ),
        (
            Health("Yellow", "Warning", ("Instance i-1 is slow", "CPU at 95 %.")),
            "Yellow",
            "warning",
            "Health Warning (Yellow), 2 causes: Instance i-1 is slow; CPU at 95 %.",
        ),
        (Health("Grey"), "Grey", "warning", "Health Grey, Beanstalk gave no cause."),
        (
            Health("Grey", "Unknown", ("None of the instances are sending data.",)),
            "Grey",
            "warning",
            "Health Unknown (Grey), 1 cause: None of the instances are sending data.",
        ),
        # A deploy or a scale in progress, within its grace period: expected, no alert.
        (Health("Grey", "Pending", ("Command is executing on all instances.",)), None, None, None),
    ],
)
def test_health_colour_not_green(report, subject, severity, detail):
    events = health("shop", report, NOW)
    if subject is None:
        assert events == []
        return
    [event] = events
    assert (event.kind, event.subject, event.severity, event.detail) == (
        "health",
        subject,
        severity,
        detail,
    )
    assert event.key == f"health:shop:{subject}"


# -- everything together ----------------------------------------------------------------


def test_detect_runs_every_detector_and_keys_stay_stable_across_ticks():
    rules = DetectorRules()
    state = AppState(
        "myapp",
        minutes=tuple(
            minute(b, requests=100, errors=10, codes={"H12": 15}, service_p95_ms=2500)
            for b in range(4)
        ),
        newest_metrics=NEWEST + timedelta(minutes=1),
        watched_since=NOW - timedelta(hours=1),
        decisions=tuple(ticks([4] * 41)),
        autoscale_min=1,
        autoscale_max=4,
        health=Health("Red", "Severe", ("down",)),
    )
    first = detect(state, NOW, rules)
    assert sorted(subjects(first)) == [
        ("errors", "web"),
        ("health", "Red"),
        ("pinned", "web"),
        ("router_error", "H12"),
        ("slow", "web p95"),
    ]
    # A minute later, with one more minute of the same: the same incidents, new details.
    later = NOW + timedelta(minutes=1)
    moved = AppState(
        "myapp",
        minutes=(*state.minutes, minute(-1, requests=100, errors=20, service_p95_ms=3000)),
        newest_metrics=state.newest_metrics,
        watched_since=state.watched_since,
        decisions=tuple(ticks([4] * 45)),
        autoscale_min=1,
        autoscale_max=4,
        health=state.health,
    )
    second = detect(moved, later, rules)
    # The H12 burst two minutes back still counts (the lookback is two minutes).
    assert {e.key for e in second} == {e.key for e in first}
    assert all(e.at == later for e in second)
    assert [e.detail for e in second if e.kind == "slow"] == ["p95 service 3 s > 2 s."]
    # One minute on, the burst has left the lookback: its incident will go quiet.
    third = detect(moved, later + timedelta(minutes=1), rules)
    assert "router_error:myapp:H12" not in {e.key for e in third}


def test_defaults_are_the_documented_thresholds():
    rules = DEFAULT_DETECTOR_RULES
    assert rules.router_burst == 10
    assert rules.router_codes == {"H10", "H12", "H13"}
    assert (rules.slow_p95_ms, rules.slow_minutes) == (2000, 3)
    assert (rules.error_rate, rules.error_min_requests, rules.error_minutes) == (0.05, 20, 3)
    assert rules.pinned_for == timedelta(minutes=10)
    assert rules.stale_after == timedelta(minutes=5)
