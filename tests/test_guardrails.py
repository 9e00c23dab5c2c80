"""Guardrails: limits, sizes, protection, self-protection, and freeze windows across midnight
and across Europe/Paris's 2026 clock changes (29 March and 25 October, at 01:00 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.guardrails import (
    ANY_TYPE,
    UNNEEDED_FORCE,
    Freeze,
    Guardrails,
    active_freeze,
    check,
    parse_duration,
    parse_freeze,
    unneeded_force,
    window_end,
)

BEFORE = {"web": (2, "standard-1x"), "worker": (1, "standard-1x"), "clock": (0, "basic")}
LIMITS = Guardrails(
    min={"web": 1},
    max={"web": 8, ANY_TYPE: 4},
    max_step=3,
    sizes=frozenset({"standard-1x", "standard-2x"}),
)
NOON = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)  # a Wednesday


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run(
    guardrails: Guardrails,
    verb: str,
    targets: dict[str, tuple[int, str | None]],
    *,
    now: datetime = NOON,
    before: dict[str, tuple[int, str]] | None = None,
    force: str | None = None,
    admin: bool = False,
    self_app: bool = False,
):
    return check(
        guardrails,
        verb,
        BEFORE if before is None else before,
        targets,
        now,
        force_reason=force,
        is_admin=admin,
        self_app=self_app,
        app="shop",
    )


@pytest.mark.parametrize(
    ("verb", "targets", "outcome", "says"),
    [
        ("scale", {"web": (5, None)}, "allowed", ""),
        ("scale", {"web": (6, None)}, "refused", "at most 3 per command"),
        ("scale", {"web": (1, None)}, "allowed", ""),
        ("scale", {"web": (0, None)}, "refused", "needs at least 1 for `web`"),
        ("scale", {"worker": (4, None)}, "allowed", ""),
        ("scale", {"worker": (5, None)}, "refused", "at most 4 per process type"),
        ("scale", {"clock": (1, None)}, "allowed", ""),  # a stopped type may start
        ("scale", {"web": (3, "Standard-2X")}, "allowed", ""),
        (
            "scale",
            {"web": (3, "performance-m")},
            "refused",
            "use one of `standard-1x`, `standard-2x`",
        ),
        # Any one bad term refuses the whole command.
        ("scale", {"web": (3, None), "worker": (9, None)}, "refused", "`worker=9`"),
        # A kill is named and confirmed: no step limit, but the minimum still holds.
        ("kill", {"worker": (0, None)}, "allowed", ""),
        ("kill", {"web": (0, None), "worker": (0, None)}, "refused", "needs at least 1"),
        # Restart sets no counts: limits do not apply.
        ("restart", {}, "allowed", ""),
        ("status", {}, "allowed", ""),
    ],
)
def test_limits(verb: str, targets: dict, outcome: str, says: str) -> None:
    verdict = run(LIMITS, verb, targets)
    assert verdict.outcome == outcome
    assert says in verdict.reason
    assert verdict.forced is False


def test_the_max_message_names_the_limit_and_the_term() -> None:
    verdict = run(LIMITS, "scale", {"web": (9, None)}, before={"web": (8, "standard-1x")})
    assert verdict.reason == (
        "`shop` allows at most 8 for `web` (the registry's `max`), so `web=9` is refused."
    )


def test_a_bad_size_lists_the_allowed_sizes() -> None:
    verdict = run(LIMITS, "scale", {"web": (2, "performance-l")})
    assert verdict.reason == (
        "`performance-l` is not an allowed size for `shop`: use one of `standard-1x`, `standard-2x`."
    )


@pytest.mark.parametrize(
    ("verb", "targets", "outcome"),
    [
        ("kill", {}, "refused"),
        ("kill", {"web": (0, None), "worker": (0, None)}, "refused"),
        ("kill", {"web": (0, None)}, "refused"),
        ("scale", {"web": (0, None)}, "refused"),
        ("scale", {"web": (0, None), "worker": (2, None)}, "refused"),
        ("kill", {"worker": (0, None)}, "allowed"),  # the web dyno can scale it back
        ("scale", {"web": (1, None)}, "allowed"),
        ("restart", {}, "allowed"),
    ],
)
def test_the_bot_protects_its_own_app(verb: str, targets: dict, outcome: str) -> None:
    verdict = run(Guardrails(), verb, targets, self_app=True, admin=True, force="because")
    assert verdict.outcome == outcome
    if outcome == "refused":
        assert verdict.reason.startswith("I will not")


@pytest.mark.parametrize(
    ("verb", "targets", "outcome"),
    [
        ("kill", {"worker": (0, None)}, "needs_approval"),
        ("kill", {"clock": (0, None)}, "needs_approval"),  # kill always asks
        ("scale", {"worker": (0, None)}, "needs_approval"),
        ("scale", {"clock": (0, None)}, "allowed"),  # already at zero: nothing stops
        ("scale", {"web": (3, None)}, "allowed"),
        ("restart", {}, "allowed"),
    ],
)
def test_protected_apps_need_a_second_person(verb: str, targets: dict, outcome: str) -> None:
    verdict = run(Guardrails(protected=True), verb, targets)
    assert verdict.outcome == outcome
    if outcome == "needs_approval":
        assert "second person" in verdict.reason


# Frozen every day from 09:00 to 18:00 Paris time (CEST in June: 07:00 to 16:00 UTC).
OFFICE_FREEZE = Freeze("0 9 * * *", timedelta(hours=9), "Europe/Paris", "release freeze")
FROZEN = Guardrails(freezes=(OFFICE_FREEZE,), protected=True, max={ANY_TYPE: 4})


def test_a_freeze_refuses_and_says_until_when_and_how_to_override() -> None:
    verdict = run(FROZEN, "scale", {"web": (3, None)})
    assert verdict.refused
    assert verdict.reason == (
        "`shop` is frozen until 18:00 Europe/Paris (release freeze). "
        'An admin can pass it with `--force "reason"`.'
    )
    # It had said `--force` outside a code span, unlike help and every other reply.
    not_admin = run(FROZEN, "scale", {"web": (3, None)}, force="site down").reason
    assert not_admin.endswith("Only an admin can pass it with `--force`; ask one of them.")


@pytest.mark.parametrize(
    ("verb", "targets", "force", "admin", "outcome", "forced", "says"),
    [
        ("scale", {"web": (3, None)}, None, True, "refused", False, "can pass it with `--force"),
        ("scale", {"web": (3, None)}, "  ", True, "refused", False, "can pass it with `--force"),
        ("scale", {"web": (3, None)}, "site down", False, "refused", False, "Only an admin"),
        ("scale", {"web": (3, None)}, "site down", True, "allowed", True, ""),
        ("restart", {}, None, False, "refused", False, "frozen until 18:00"),
        ("restart", {}, "hung", True, "allowed", True, ""),
        ("kill", {"worker": (0, None)}, "runaway", True, "needs_approval", True, "protected"),
        ("status", {}, None, False, "allowed", False, ""),
        ("approve", {}, None, False, "allowed", False, ""),
        # A hard limit is not a freeze: --force does not pass it.
        ("scale", {"web": (5, None)}, "site down", True, "refused", False, "at most 4"),
    ],
)
def test_force_passes_a_freeze_for_admins_only(
    verb: str,
    targets: dict,
    force: str | None,
    admin: bool,
    outcome: str,
    forced: bool,
    says: str,
) -> None:
    verdict = run(FROZEN, verb, targets, force=force, admin=admin)
    assert verdict.outcome == outcome
    assert verdict.forced is forced
    assert verdict.freeze_reason == ("release freeze" if forced else None)
    assert says in verdict.reason
    assert bool(verdict.reason) is (outcome != "allowed")


def test_force_outside_a_freeze_is_not_break_glass() -> None:
    evening = utc("2026-06-03T17:00:00")  # 19:00 in Paris
    verdict = run(FROZEN, "scale", {"web": (3, None)}, now=evening, force="x", admin=True)
    assert verdict.allowed and not verdict.forced
    assert unneeded_force(verdict, "x") == UNNEEDED_FORCE
    # Through a freeze it was needed; refused, or with no force, there is nothing to add.
    assert unneeded_force(run(FROZEN, "restart", {}, force="x", admin=True), "x") is None
    assert unneeded_force(run(FROZEN, "restart", {}, force="x"), "x") is None
    assert unneeded_force(verdict, None) is None


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(FROZEN, "scale", {}, now=datetime(2026, 6, 3, 12))


NIGHTLY = Freeze("0 1 * * *", timedelta(hours=3), "Europe/Paris", "backups")


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # 29 March 2026: 01:00 CET is 00:00 UTC; clocks jump 02:00 → 03:00 at 01:00 UTC.
        # Three hours of elapsed time end at 03:00 UTC, 05:00 CEST (not 04:00 wall-clock).
        ("2026-03-28T23:59:59", None),
        ("2026-03-29T00:00:00", "2026-03-29T03:00:00"),
        ("2026-03-29T00:59:59", "2026-03-29T03:00:00"),
        ("2026-03-29T01:00:00", "2026-03-29T03:00:00"),
        ("2026-03-29T02:30:00", "2026-03-29T03:00:00"),
        ("2026-03-29T02:59:59", "2026-03-29T03:00:00"),
        ("2026-03-29T03:00:00", None),
        # The next night is summer time: 01:00 CEST is 23:00 UTC.
        ("2026-03-29T23:00:00", "2026-03-30T02:00:00"),
        # 25 October 2026: 01:00 CEST is 23:00 UTC the day before; clocks go 03:00 → 02:00
        # at 01:00 UTC. The window ends at 02:00 UTC, 03:00 CET (not 04:00 wall-clock).
        ("2026-10-24T22:59:59", None),
        ("2026-10-24T23:00:00", "2026-10-25T02:00:00"),
        ("2026-10-25T00:59:59", "2026-10-25T02:00:00"),
        ("2026-10-25T01:30:00", "2026-10-25T02:00:00"),
        ("2026-10-25T02:00:00", None),
        ("2026-10-25T02:30:00", None),
        ("2026-10-26T00:00:00", "2026-10-26T03:00:00"),  # winter time: 01:00 CET
    ],
)
def test_a_nightly_window_across_both_clock_changes(now: str, until: str | None) -> None:
    expected = utc(until) if until else None
    assert window_end(NIGHTLY, utc(now)) == expected


@pytest.mark.parametrize(
    ("now", "until_text"),
    [
        ("2026-03-29T02:30:00", "05:00 Europe/Paris"),
        ("2026-10-25T01:30:00", "03:00 Europe/Paris"),
    ],
)
def test_the_message_gives_local_time_after_the_change(now: str, until_text: str) -> None:
    verdict = run(Guardrails(freezes=(NIGHTLY,)), "restart", {}, now=utc(now))
    assert f"frozen until {until_text} (backups)" in verdict.reason


# Friday 20:00 to Saturday 02:00 in Paris; 5 June 2026 is a Friday (CEST, UTC+2).
FRIDAY_NIGHT = Freeze("0 20 * * FRI", timedelta(hours=6), "Europe/Paris", "weekend")


@pytest.mark.parametrize("cron", ["0 20 * * FRI", "0 20 * * 5", "0 20 * * fri"])
@pytest.mark.parametrize(
    ("now", "frozen", "until_text"),
    [
        ("2026-06-04T18:00:00", False, ""),  # Thursday 20:00
        ("2026-06-05T17:59:59", False, ""),  # Friday 19:59:59
        ("2026-06-05T18:00:00", True, "Sat 02:00 Europe/Paris"),  # Friday 20:00
        ("2026-06-05T21:59:00", True, "Sat 02:00 Europe/Paris"),  # Friday 23:59
        ("2026-06-05T22:00:00", True, "02:00 Europe/Paris"),  # Saturday 00:00
        ("2026-06-05T23:59:59", True, "02:00 Europe/Paris"),  # Saturday 01:59:59
        ("2026-06-06T00:00:00", False, ""),  # Saturday 02:00
        ("2026-06-06T18:30:00", False, ""),  # Saturday 20:30
    ],
)
def test_a_friday_night_window_across_midnight(
    cron: str, now: str, frozen: bool, until_text: str
) -> None:
    freeze = Freeze(cron, FRIDAY_NIGHT.duration, FRIDAY_NIGHT.timezone, FRIDAY_NIGHT.reason)
    verdict = run(Guardrails(freezes=(freeze,)), "scale", {"web": (3, None)}, now=utc(now))
    assert verdict.refused is frozen
    if frozen:
        assert f"frozen until {until_text} (weekend)" in verdict.reason


@pytest.mark.parametrize(
    ("freeze", "now", "until"),
    [
        # A local time skipped in spring fires when the clocks have moved on (01:30 UTC).
        (
            Freeze("30 2 * * *", timedelta(hours=1), "Europe/Paris", "x"),
            "2026-03-29T01:45:00",
            "2026-03-29T02:30:00",
        ),
        # …and stays open its whole hour: a window whose start, an hour back, falls after the
        # gap had been read as closed at 04:15 CEST.
        (
            Freeze("30 2 * * *", timedelta(hours=1), "Europe/Paris", "x"),
            "2026-03-29T02:15:00",
            "2026-03-29T02:30:00",
        ),
        (
            Freeze("30 2 * * *", timedelta(hours=1), "Europe/Paris", "x"),
            "2026-03-29T02:30:00",
            None,
        ),
        (
            Freeze("30 2 * * SUN", timedelta(minutes=45), "America/New_York", "x"),
            "2026-03-08T08:10:00",  # 04:10 EDT; fired 03:30 EDT
            "2026-03-08T08:15:00",
        ),
        # A local time lived twice in autumn fires twice; the windows join.
        (
            Freeze("30 2 * * *", timedelta(hours=1), "Europe/Paris", "x"),
            "2026-10-25T01:00:00",
            "2026-10-25T02:30:00",
        ),
        (
            Freeze("30 2 * * *", timedelta(hours=1), "Europe/Paris", "x"),
            "2026-10-25T02:30:00",
            None,
        ),
        # Back-to-back windows read as one.
        (
            Freeze("0 9,10 * * *", timedelta(hours=1), "UTC", "x"),
            "2026-06-03T09:30:00",
            "2026-06-03T11:00:00",
        ),
        (Freeze("0 9,10 * * *", timedelta(hours=1), "UTC", "x"), "2026-06-03T11:00:00", None),
        # America/New_York moved on 8 March 2026: 09:00 EDT is 13:00 UTC.
        (
            Freeze("0 9 * * *", timedelta(minutes=30), "America/New_York", "x"),
            "2026-03-09T13:10:00",
            "2026-03-09T13:30:00",
        ),
        (
            Freeze("0 9 * * *", timedelta(minutes=30), "America/New_York", "x"),
            "2026-03-09T14:10:00",
            None,
        ),
    ],
)
def test_window_edges(freeze: Freeze, now: str, until: str | None) -> None:
    assert window_end(freeze, utc(now)) == (utc(until) if until else None)


def test_the_first_open_freeze_is_reported() -> None:
    closed = Freeze("0 3 * * *", timedelta(hours=1), "UTC", "closed")
    found = active_freeze((closed, OFFICE_FREEZE, NIGHTLY), NOON)
    assert found == (OFFICE_FREEZE, utc("2026-06-03T16:00:00"))
    assert active_freeze((closed,), NOON) is None


_type_names = st.sampled_from(["web", "worker", "clock"])
_limits = st.dictionaries(st.sampled_from(["web", "worker", ANY_TYPE]), st.integers(0, 10))


@given(
    mins=_limits,
    maxes=_limits,
    step=st.none() | st.integers(0, 5),
    verb=st.sampled_from(["scale", "kill", "autoscale", "pin"]),
    before=st.dictionaries(_type_names, st.integers(0, 12), min_size=1),
    targets=st.dictionaries(_type_names, st.integers(0, 12), min_size=1),
)
def test_guardrails_never_allow_a_count_outside_the_limits(
    mins: dict, maxes: dict, step: int | None, verb: str, before: dict, targets: dict
) -> None:
    guardrails = Guardrails(min=mins, max=maxes, max_step=step)
    verdict = run(
        guardrails,
        verb,
        {ptype: (qty, None) for ptype, qty in targets.items()},
        before={ptype: (qty, "standard-1x") for ptype, qty in before.items()},
    )
    if verdict.refused:
        return
    for ptype, qty in targets.items():
        low = mins.get(ptype, mins.get(ANY_TYPE, 0))
        high = maxes.get(ptype, maxes.get(ANY_TYPE, qty))
        assert low <= qty <= high
        if step is not None and verb != "kill":
            assert abs(qty - before.get(ptype, 0)) <= step


@given(
    size=st.sampled_from(["standard-1x", "Standard-2X", "performance-m", "basic", "eco"]),
    allowed=st.frozensets(st.sampled_from(["standard-1x", "standard-2x", "basic"])),
)
def test_guardrails_never_allow_a_size_outside_the_list(size: str, allowed: frozenset) -> None:
    verdict = run(Guardrails(sizes=allowed), "scale", {"web": (2, size)})
    assert verdict.allowed is (size.lower() in allowed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
        ("1d", timedelta(days=1)),
        (" 3 hours ", timedelta(hours=3)),
        ("45min", timedelta(minutes=45)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "2", "1.5h", "-1h", "2w", "2h30m", "two hours"])
def test_parse_duration_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_parse_freeze_accepts_a_good_window() -> None:
    freeze = parse_freeze(" 0 17 * * FRI ", "2h", "Europe/Paris", " release freeze ")
    assert freeze == Freeze("0 17 * * FRI", timedelta(hours=2), "Europe/Paris", "release freeze")


@pytest.mark.parametrize(
    ("cron", "duration", "zone", "reason", "message"),
    [
        ("0 25 * * *", "1h", "UTC", "r", r"`0 25 \* \* \*` is not valid: .*25"),
        ("0 17 * *", "1h", "UTC", "r", "has 4 fields"),
        ("0 17 * * FRY", "1h", "UTC", "r", "`fry` is not a weekday"),
        ("0 17 * * 8", "1h", "UTC", "r", "`8` is not a weekday"),
        ("0 17 * * 5-1", "1h", "UTC", "r", "runs backwards"),
        ("0 17 1 * MON", "1h", "UTC", "r", "both the day of the month and the weekday"),
        ("0 17 * * *", "0m", "UTC", "r", "longer than zero"),
        ("0 17 * * *", timedelta(minutes=-5), "UTC", "r", "longer than zero"),
        ("0 17 * * *", "soon", "UTC", "r", "`soon` is not a duration"),
        ("0 17 * * *", "1h", "Europe/Pariss", "r", "Did you mean `Europe/Paris`"),
        ("0 17 * * *", "1h", "Paris", "r", "Did you mean `Europe/Paris`"),
        ("0 17 * * *", "1h", "Mars/Olympus", "r", "`Mars/Olympus` is not an IANA time zone"),
        ("0 17 * * *", "1h", "UTC", "  ", "Give the freeze a reason"),
    ],
)
def test_parse_freeze_names_what_is_wrong(
    cron: str, duration, zone: str, reason: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_freeze(cron, duration, zone, reason)


def test_the_most_a_process_type_may_run():
    rails = Guardrails(max={"web": 0, ANY_TYPE: 8})
    assert rails.most("web") == 0  # its own limit, even zero
    assert rails.most("worker") == 8  # else the one for every type
    assert Guardrails().most("web") is None
