"""The Heroku API budget as a token bucket, table by table: refill, spending, mirroring
`RateLimit-Remaining`, the reserve kept for people's commands, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.budget import CAPACITY, RESERVE, Budget

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def test_defaults_are_herokus_limit_with_a_tenth_in_reserve() -> None:
    budget = Budget()
    assert (budget.capacity, budget.refill_per_hour, budget.reserve) == (4500, 4500.0, 450)
    assert budget.remaining(T0) == CAPACITY and budget.allows(T0)


@pytest.mark.parametrize(
    ("tokens", "elapsed", "expected"),
    [
        (0, timedelta(0), 0),
        (0, timedelta(seconds=1), 1),  # 4,500 an hour is 1.25 a second
        (0, timedelta(seconds=4), 5),
        (0, timedelta(minutes=1), 75),
        (100, timedelta(minutes=30), 2350),
        (0, timedelta(hours=1), 4500),
        (4000, timedelta(hours=1), 4500),  # never above capacity
        (4500, timedelta(hours=5), 4500),
        (10, timedelta(seconds=-30), 10),  # a clock that went back refills nothing
    ],
)
def test_refill(tokens: float, elapsed: timedelta, expected: int) -> None:
    assert Budget(tokens=tokens, at=T0).remaining(T0 + elapsed) == expected


@pytest.mark.parametrize(
    ("remaining", "cost", "allowed"),
    [
        (4500, 1, True),
        (452, 1, True),
        (451, 1, True),  # leaves exactly the reserve
        (450, 1, False),  # remaining <= reserve: refused
        (449, 1, False),
        (0, 1, False),
        (452, 2, True),
        (452, 3, False),
        (460, 10, True),
        (460, 11, False),
    ],
)
def test_the_reserve_is_left_for_people(remaining: int, cost: int, allowed: bool) -> None:
    assert Budget(tokens=remaining, at=T0).allows(T0, cost) is allowed


@pytest.mark.parametrize(
    ("tokens", "cost", "after"),
    [(4500, 1, 4499), (4500, 3, 4497), (2, 5, 0), (0, 1, 0)],
)
def test_spending(tokens: float, cost: int, after: int) -> None:
    assert Budget(tokens=tokens, at=T0).spend(T0, cost).remaining(T0) == after


@pytest.mark.parametrize(
    ("ours", "header", "after"),
    [
        (4500, 4000, 4000),  # someone else on the account spent 500
        (1000, 3000, 3000),  # Heroku refilled faster than we counted
        (1000, None, 1000),  # no header: keep our own count
        (1000, -5, 0),
        (1000, 9999, 4500),  # never above capacity
        (1000, 0, 0),
    ],
)
def test_rate_limit_remaining_is_mirrored(ours: float, header: int | None, after: int) -> None:
    assert Budget(tokens=ours, at=T0).observe(header, T0).remaining(T0) == after


def test_a_mirrored_figure_refills_from_when_it_was_seen() -> None:
    seen = Budget(at=T0).observe(100, T0 + timedelta(minutes=1))
    assert seen.remaining(T0 + timedelta(minutes=2)) == 175
    assert not Budget(at=T0).observe(RESERVE, T0).allows(T0)
    # The autoscaler is let back in once the bucket refills past the reserve (under a second).
    assert Budget(at=T0).observe(RESERVE, T0).allows(T0 + timedelta(seconds=1))


def test_a_fresh_bucket_starts_full_at_its_first_use() -> None:
    assert Budget().now(T0).at == T0
    assert Budget().spend(T0).remaining(T0 + timedelta(hours=1)) == CAPACITY


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"reserve": -1}, "reserve"),
        ({"reserve": 4500}, "reserve"),
        ({"refill_per_hour": -1.0}, "refill"),
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Budget(**kwargs)  # type: ignore[arg-type]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Budget().now(datetime(2026, 6, 3, 12, 0))


@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=600),  # seconds since the last step
            st.integers(min_value=0, max_value=20),  # requests spent
            st.none() | st.integers(min_value=-10, max_value=10_000),  # a header, maybe
        ),
        max_size=40,
    )
)
def test_tokens_stay_between_zero_and_capacity(
    steps: list[tuple[int, int, int | None]],
) -> None:
    budget, now = Budget(), T0
    for seconds, cost, header in steps:
        now += timedelta(seconds=seconds)
        budget = budget.spend(now, cost).observe(header, now)
        assert 0 <= budget.remaining(now) <= CAPACITY
        if budget.allows(now, cost):
            assert budget.remaining(now) - cost >= RESERVE
