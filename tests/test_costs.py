"""Cost estimates: Heroku list prices, EC2 on-demand for Beanstalk, and the sentence shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.costs import (
    EC2_HOURLY_USD,
    HEROKU_MONTHLY_USD,
    CostChange,
    describe,
    monthly_change,
    monthly_price,
    why_ask,
)
from policies.sizes import HEROKU_SIZES, check_size, past_heroku_limit


@pytest.mark.parametrize(
    ("platform", "before", "after", "expected"),
    [
        (
            "heroku",
            {"web": (3, "standard-1x")},
            {"web": (5, "standard-1x")},
            CostChange(75.0, 125.0, 50.0, False, ()),
        ),
        # The Heroku API answers "Standard-1X"; the table is lowercase.
        (
            "heroku",
            {"web": (1, "Standard-1X"), "worker": (1, "Basic")},
            {"web": (1, "Standard-2X"), "worker": (0, "Basic")},
            CostChange(32.0, 50.0, 18.0, False, ()),
        ),
        (
            "heroku",
            {"web": (2, "performance-m")},
            {"web": (0, "performance-m")},
            CostChange(500.0, 0.0, -500.0, False, ()),
        ),
        # Sizes priced from figures not confirmed per dyno make it an estimate.
        (
            "heroku",
            {"web": (1, "standard-2x")},
            {"web": (1, "performance-xl")},
            CostChange(50.0, 750.0, 700.0, True, ()),
        ),
        (
            "heroku",
            {"web": (1, "standard-1x")},
            {"web": (2, "private-2xl")},
            CostChange(25.0, 0.0, -25.0, False, ("private-2xl",), ("private-2xl",)),
        ),
        # A stopped type's size does not matter, even if unpriced.
        (
            "heroku",
            {"web": (1, "basic"), "old": (0, "mystery")},
            {"web": (1, "basic"), "old": (0, "mystery")},
            CostChange(7.0, 7.0, 0.0, False, ()),
        ),
        # Beanstalk: EC2 hourly price × 730 hours, always an estimate.
        (
            "beanstalk",
            {"web": (2, "t3.small")},
            {"web": (3, "t3.medium")},
            CostChange(30.37, 91.1, 60.73, True, ()),  # the delta of the rounded totals
        ),
        (
            "beanstalk",
            {"web": (2, "m6i.large")},
            {"web": (2, "x9.huge")},
            CostChange(140.16, 0.0, -140.16, True, ("x9.huge",), ("x9.huge",)),
        ),
    ],
)
def test_monthly_change(platform: str, before: dict, after: dict, expected: CostChange) -> None:
    assert monthly_change(platform, before, after) == expected


@pytest.mark.parametrize(
    ("change", "text"),
    [
        (CostChange(75.0, 125.0, 50.0, False, ()), "≈ $75/month → $125/month (+$50/month)"),
        (CostChange(500.0, 0.0, -500.0, False, ()), "≈ $500/month → $0/month (-$500/month)"),
        (CostChange(7.0, 7.0, 0.0, False, ()), "≈ $7/month → $7/month (no change)"),
        (
            CostChange(30.37, 91.1, 60.73, True, ()),
            "≈ $30.37/month → $91.10/month (+$60.73/month) (estimate)",
        ),
        (
            CostChange(1500.0, 3000.0, 1500.0, True, ()),
            "≈ $1,500/month → $3,000/month (+$1,500/month) (estimate)",
        ),
        (
            CostChange(25.0, 0.0, -25.0, False, ("private-2xl",)),
            "≈ $25/month → $0/month (-$25/month). "
            "No price is known for `private-2xl`, so it is left out.",
        ),
        (
            CostChange(25.0, 0.0, -25.0, False, ("private-2xl",), ("private-2xl",)),
            "≈ $25/month → unknown: no price is known for `private-2xl`.",
        ),
    ],
)
def test_describe(change: CostChange, text: str) -> None:
    assert describe(change) == text


@pytest.mark.parametrize(
    ("before", "after", "added"),
    [
        ({"web": (2, "t3.small")}, {"web": (3, "m5.24xlarge")}, ("m5.24xlarge",)),
        ({"web": (2, "m5.24xlarge")}, {"web": (3, "m5.24xlarge")}, ("m5.24xlarge",)),
        ({"web": (3, "m5.24xlarge")}, {"web": (2, "m5.24xlarge")}, ()),
        ({"web": (3, "m5.24xlarge")}, {"web": (3, "t3.small")}, ()),
        # Another type's unpriced size, unchanged, adds nothing unpriced.
        (
            {"web": (1, "t3.small"), "x": (2, "z9.big")},
            {"web": (2, "t3.small"), "x": (2, "z9.big")},
            (),
        ),
    ],
)
def test_a_change_that_adds_an_unpriced_size_says_so(
    before: dict, after: dict, added: tuple
) -> None:
    change = monthly_change("beanstalk", before, after)
    assert change.unpriced_added == added
    asked = why_ask(change, 1_000_000.0)
    assert (asked is not None) == bool(added)
    if added:
        assert asked == "With its cost unknown, I ask first."
        assert describe(change).endswith(f"→ unknown: no price is known for `{added[0]}`.")


def test_why_ask_past_the_threshold() -> None:
    change = monthly_change("heroku", {"web": (1, "standard-1x")}, {"web": (20, "standard-1x")})
    assert why_ask(change, 250.0) == (
        "That raises the monthly cost past this app's threshold, so I ask first."
    )
    assert why_ask(change, 500.0) is None


def test_every_priced_size_is_a_real_size() -> None:
    # A typo in the price table would otherwise price a size nobody can ask for.
    assert set(HEROKU_MONTHLY_USD) <= set(HEROKU_SIZES)
    for instance_type in EC2_HOURLY_USD:
        assert check_size("beanstalk", instance_type) is None, instance_type


def test_the_well_known_prices() -> None:
    assert [
        monthly_price("heroku", size)
        for size in ("basic", "standard-1x", "standard-2x", "performance-m", "performance-l")
    ] == [7.0, 25.0, 50.0, 250.0, 500.0]
    assert monthly_price("beanstalk", "T3.Micro") == pytest.approx(0.0104 * 730)
    assert monthly_price("heroku", "t3.micro") is None


def test_an_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="`fly` is not a platform"):
        monthly_change("fly", {}, {})


_formations = st.dictionaries(
    st.sampled_from(["web", "worker"]),
    st.tuples(st.integers(0, 20), st.sampled_from(["basic", "standard-1x", "performance-m"])),
)


@given(_formations, _formations)
def test_delta_is_after_minus_before_and_swapping_negates_it(before: dict, after: dict) -> None:
    forward = monthly_change("heroku", before, after)
    backward = monthly_change("heroku", after, before)
    assert forward.delta_usd == pytest.approx(forward.after_usd - forward.before_usd)
    assert backward.delta_usd == pytest.approx(-forward.delta_usd)
    assert forward.before_usd >= 0 and forward.after_usd >= 0


@pytest.mark.parametrize(
    ("size", "count", "refused", "limit"),
    [
        ("Basic", 2, True, "one Basic"),
        ("eco", 5, True, "one eco"),
        ("Basic", 1, None, None),
        ("Performance-M", 11, False, "at most 10 Performance-M"),
        ("private-l", 11, False, "at most 10 private-l"),
        ("Shield-S", 10, None, None),
        ("Standard-2X", 500, None, None),  # only the app's total of 100, which is Heroku's
        ("", 50, None, None),  # a size the formation did not say
    ],
)
def test_heroku_s_default_limits_per_process_type(size, count, refused, limit):
    past = past_heroku_limit("myapp", "web", size, count, f"web={count}")
    if refused is None:
        assert past is None
        return
    assert past is not None and past.refused is refused and limit in past.text
    assert f"web={count}" in past.text
    # Eco and Basic never run more than one: the answer names the scale that would.
    assert ("`/deploy scale web=1:standard-1x myapp`" in past.text) is refused


def test_a_heroku_limit_escapes_the_size_the_platform_named():
    past = past_heroku_limit("myapp", "web", "Performance-<!channel>", 11, "max=11")
    assert past is not None and "<!channel>" not in past.text
