"""Monthly cost of a formation change, from list prices: shown before a scale is confirmed.

Heroku bills dynos per second up to a monthly price per size; Beanstalk's cost here is only
its EC2 instances at on-demand Linux prices in us-east-1 (no EBS, load balancer, data or
other regions), so Beanstalk figures are always labelled as an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policies.slack_text import listed

# Heroku's list price per dyno per month in USD: heroku.com/pricing and Dev Center "Usage &
# Billing", as known on 2026-11-28. Basic, Standard and Performance-M/L are long-published.
HEROKU_MONTHLY_USD: dict[str, float] = {
    "eco": 5.0,  # the Eco plan: $5 a month for a 1000-hour pool shared by all Eco dynos
    "basic": 7.0,
    "standard-1x": 25.0,
    "standard-2x": 50.0,
    "performance-m": 250.0,
    "performance-l": 500.0,
    "performance-l-ram": 500.0,  # unsure: the 2024 sizes, not rechecked against the page
    "performance-xl": 750.0,  # unsure, as above
    "performance-2xl": 1500.0,  # unsure, as above
    "private-s": 300.0,  # unsure: Private and Shield dynos are sold on Enterprise contracts
    "private-m": 600.0,  # unsure, as above
    "private-l": 1200.0,  # unsure, as above
    "shield-s": 360.0,  # unsure, as above
    "shield-m": 720.0,  # unsure, as above
    "shield-l": 1440.0,  # unsure, as above
}
# Sizes whose figure above is not a confirmed per-dyno list price: a change touching one is
# labelled as an estimate.
HEROKU_UNCONFIRMED = frozenset(
    {
        "eco",
        "performance-l-ram",
        "performance-xl",
        "performance-2xl",
        "private-s",
        "private-m",
        "private-l",
        "shield-s",
        "shield-m",
        "shield-l",
    }
)

# EC2 on-demand, Linux, us-east-1, USD per hour (aws.amazon.com/ec2/pricing/on-demand/, as
# known on 2026-11-28). Prices change and differ by region: these make an estimate only.
EC2_HOURLY_USD: dict[str, float] = {
    **{
        f"t3.{size}": price
        for size, price in zip(
            ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"),
            (0.0052, 0.0104, 0.0208, 0.0416, 0.0832, 0.1664, 0.3328),
            strict=True,
        )
    },
    **{
        f"t3a.{size}": price
        for size, price in zip(
            ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"),
            (0.0047, 0.0094, 0.0188, 0.0376, 0.0752, 0.1504, 0.3008),
            strict=True,
        )
    },
    **{
        f"t4g.{size}": price
        for size, price in zip(
            ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"),
            (0.0042, 0.0084, 0.0168, 0.0336, 0.0672, 0.1344, 0.2688),
            strict=True,
        )
    },
    **{
        f"{family}.{size}": price
        for family, prices in (
            ("m5", (0.096, 0.192, 0.384, 0.768)),
            ("m6i", (0.096, 0.192, 0.384, 0.768)),
            ("m7g", (0.0816, 0.1632, 0.3264, 0.6528)),
            ("c5", (0.085, 0.17, 0.34, 0.68)),
            ("c6i", (0.085, 0.17, 0.34, 0.68)),
        )
        for size, price in zip(("large", "xlarge", "2xlarge", "4xlarge"), prices, strict=True)
    },
}
# AWS's own convention for a month of on-demand hours (365 × 24 / 12).
HOURS_PER_MONTH = 730

PLATFORMS = ("heroku", "beanstalk")
# A change raising the monthly cost by more than this (USD) asks first, showing the cost:
# ten Standard-1X dynos. The registry's `guardrails: confirm_above_usd:` sets it per app.
DEFAULT_CONFIRM_ABOVE_USD = 250.0


@dataclass(frozen=True)
class CostChange:
    before_usd: float
    after_usd: float
    delta_usd: float
    estimate: bool  # True when a price is approximate (always on Beanstalk)
    unknown_sizes: tuple[str, ...]  # running sizes with no price: left out of the sums
    unpriced_added: tuple[str, ...] = ()  # of those, the sizes the change runs more of


def monthly_price(platform: str, size: str) -> float | None:
    """USD per month for one dyno or instance of `size`, or None if no price is known."""
    key = size.strip().lower()
    if platform == "heroku":
        return HEROKU_MONTHLY_USD.get(key)
    if platform == "beanstalk":
        hourly = EC2_HOURLY_USD.get(key)
        return None if hourly is None else hourly * HOURS_PER_MONTH
    raise ValueError(f"`{platform}` is not a platform I price: use one of {', '.join(PLATFORMS)}.")


def monthly_change(
    platform: str,
    before: Mapping[str, tuple[int, str]],
    after: Mapping[str, tuple[int, str]],
) -> CostChange:
    """The monthly cost of formation `before` and `after` (type → (quantity, size))."""
    if platform not in PLATFORMS:
        raise ValueError(
            f"`{platform}` is not a platform I price: use one of {', '.join(PLATFORMS)}."
        )
    before_usd, unknown_before, rough_before = _total(platform, before)
    after_usd, unknown_after, rough_after = _total(platform, after)
    return CostChange(
        before_usd=before_usd,
        after_usd=after_usd,
        delta_usd=round(after_usd - before_usd, 2),
        estimate=platform == "beanstalk" or rough_before or rough_after,
        unknown_sizes=tuple(sorted(unknown_before.keys() | unknown_after.keys())),
        unpriced_added=tuple(
            sorted(size for size, n in unknown_after.items() if n > unknown_before.get(size, 0))
        ),
    )


def why_ask(change: CostChange, threshold_usd: float) -> str | None:
    """Why a person must confirm `change` for its cost, or None: it rises past the app's
    threshold, or it runs more of a size with no known price, which the sums leave out
    (counted as nothing, any number of them would otherwise go ahead unasked)."""
    if change.unpriced_added:
        return "With its cost unknown, I ask first."
    if change.delta_usd > threshold_usd:
        return "That raises the monthly cost past this app's threshold, so I ask first."
    return None


def _total(
    platform: str, formation: Mapping[str, tuple[int, str]]
) -> tuple[float, dict[str, int], bool]:
    # `unknown`: how many of each size with no price run, left out of the total.
    total, unknown, rough = 0.0, {}, False
    for quantity, size in formation.values():
        if quantity <= 0:
            continue  # stopped process types cost nothing, whatever their size
        key = size.strip().lower()
        price = monthly_price(platform, key)
        if price is None:
            unknown[key] = unknown.get(key, 0) + quantity
            continue
        total += quantity * price
        rough = rough or (platform == "heroku" and key in HEROKU_UNCONFIRMED)
    return round(total, 2), unknown, rough


def describe(change: CostChange) -> str:
    """`≈ $75/month → $125/month (+$50/month)`, marked when it is an estimate or incomplete."""
    if change.unpriced_added:
        # The sums leave the unpriced size out: a "saving" shown for a move to it would lie.
        return (
            f"≈ {_usd(change.before_usd)}/month → unknown: no price is known for "
            f"{listed(change.unpriced_added)}."
        )
    delta = change.delta_usd
    if abs(delta) < 0.005:
        difference = "no change"
    else:
        difference = f"{'+' if delta > 0 else '-'}{_usd(abs(delta))}/month"
    text = f"≈ {_usd(change.before_usd)}/month → {_usd(change.after_usd)}/month ({difference})"
    if change.estimate:
        text += " (estimate)"
    if change.unknown_sizes:
        text += f". No price is known for {listed(change.unknown_sizes)}, so it is left out."
    return text


def _usd(amount: float) -> str:
    if abs(amount - round(amount)) < 0.005:
        return f"${round(amount):,}"
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class MonthlyCost:
    usd: float
    estimate: bool
    unknown_sizes: tuple[str, ...]


def monthly_cost(platform: str, formation: Mapping[str, tuple[int, str]]) -> MonthlyCost:
    """What `formation` (type → (quantity, size)) costs a month at list prices."""
    change = monthly_change(platform, formation, formation)
    return MonthlyCost(change.after_usd, change.estimate, change.unknown_sizes)


def hourly_price(platform: str, size: str) -> float | None:
    """USD per hour for one dyno or instance of `size` (a month is 730 hours)."""
    monthly = monthly_price(platform, size)
    return None if monthly is None else monthly / HOURS_PER_MONTH


def dyno_hours(
    samples: Sequence[tuple[float, int]], until: float, longest_gap: float = 300.0
) -> tuple[float, float]:
    """(dyno-hours, hours covered) from (epoch seconds, count) samples, oldest first: each
    count holds until the next sample, the last until `until`. A gap longer than
    `longest_gap` (the worker was down) counts only `longest_gap`, and the hours covered
    say how much of the span the record speaks for."""
    total = covered = 0.0
    for i, (at, count) in enumerate(samples):
        end = samples[i + 1][0] if i + 1 < len(samples) else until
        span = min(max(0.0, end - at), longest_gap)
        total += count * span
        covered += span
    return total / 3600, covered / 3600


def usd(amount: float) -> str:
    """`$1,234` for whole dollars, `$12.34` otherwise."""
    return _usd(amount)
