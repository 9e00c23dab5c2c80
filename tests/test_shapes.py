"""The synthetic traffic shapes and the level-knowing bound drawn from them."""

from __future__ import annotations

import statistics

import pytest

from benchmarks.autoscale_bound import knowing_plan, level_rates
from policies.shapes import SHAPES, generate, levels
from policies.simulator import Model, make_context
from policies.simulator_baselines import plan_ahead


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_seed_always_draws_the_same_trace_around_its_levels(shape: str) -> None:
    trace, again, other = generate(shape, 1), generate(shape, 1), generate(shape, 2)
    assert trace == again and trace.counts != other.counts
    drawn = levels(shape, 1)
    assert len(drawn) == len(trace.counts) == 3 * 24 * 60
    # Each count is its level times a normal wobble of the stated relative deviation.
    wobbles = [
        (c / level - 1) / sd
        for c, (level, sd) in zip(trace.counts, drawn, strict=True)
        if level > 0
    ]
    assert abs(statistics.fmean(wobbles)) < 0.05
    assert 0.95 < statistics.pstdev(wobbles) < 1.05


def test_an_unknown_shape_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown shape 'tsunami'; try one of flash-crowd"):
        levels("tsunami", 1)


def test_a_plan_has_each_steps_dynos_ready_a_boot_ahead() -> None:
    assert plan_ahead([1, 1, 1, 4, 1, 1, 2, 1], span=2) == [1, 4, 4, 4, 2, 2, 2, 1]
    assert plan_ahead([], span=6) == []


def test_the_level_knowing_plan_grows_at_every_step_with_the_price_of_a_violation() -> None:
    context = make_context(generate("noisy-plateau", 1), Model())
    steps = level_rates(context, "shape:noisy-plateau#1")
    assert len(steps) == len(context.rates)
    cheap, dear = knowing_plan(context, steps, 1.0), knowing_plan(context, steps, 1e6)
    assert all(a <= b for a, b in zip(cheap, dear, strict=True))
    assert sum(dear) > sum(cheap)
    # The level it plans for is the trace's, scaled as the simulator scales it.
    assert statistics.fmean(r for r, _ in steps) == pytest.approx(
        statistics.fmean(context.rates), rel=0.02
    )
