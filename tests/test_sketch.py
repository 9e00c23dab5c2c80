"""The latency sketch: 1% relative accuracy against an exact sort, exact merges, storage."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.sketch import MIN_VALUE, Sketch

QS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
SLACK = 1e-9  # floating point at bucket edges


def exact(values: list[float], q: float) -> float:
    """The lower-rank quantile by sorting, the definition the sketch approximates."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def relative_error(got: float | None, want: float) -> float:
    assert got is not None
    if want == 0:
        return abs(got)
    return abs(got - want) / want


def sketch_of(values: list[float]) -> Sketch:
    sketch = Sketch()
    for value in values:
        sketch.add(value)
    return sketch


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.lognormvariate(math.log(45), 0.9),  # router service times
        lambda rng: rng.uniform(0, 30000),
        lambda rng: rng.expovariate(1 / 5),  # queue times, many near zero
        lambda rng: 10 ** rng.uniform(-6, 9),  # twelve decades
        lambda rng: float(rng.choice((0, 0, 1, 2, 3, 30000))),  # ties and zeros
    ],
    ids=["lognormal", "uniform", "exponential", "decades", "ties"],
)
def test_quantiles_are_within_one_percent_of_the_exact_sort(draw) -> None:
    rng = random.Random(20261128)
    values = [draw(rng) for _ in range(20000)]
    sketch = sketch_of(values)
    for q in QS:
        assert relative_error(sketch.quantile(q), exact(values, q)) <= 0.01 + SLACK, q


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e9)), min_size=1, max_size=300
    ),
    st.sampled_from(QS),
)
def test_any_data_any_quantile_within_one_percent(values: list[float], q: float) -> None:
    assert relative_error(sketch_of(values).quantile(q), exact(values, q)) <= 0.01 + SLACK


def test_a_coarser_sketch_would_fail_the_accuracy_test() -> None:
    # The accuracy test can fail: the same data through a 5% sketch misses 1% somewhere.
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1) for _ in range(5000)]
    coarse = Sketch(0.05)
    for value in values:
        coarse.add(value)
    assert max(relative_error(coarse.quantile(q), exact(values, q)) for q in QS) > 0.01


def test_extremes_are_exact() -> None:
    sketch = sketch_of([3.3, 1000.0, 17.0])
    assert (sketch.quantile(0), sketch.quantile(1)) == (3.3, 1000.0)
    assert (sketch.min, sketch.max, sketch.count) == (3.3, 1000.0, 3)


@settings(max_examples=200)
@given(
    st.lists(st.floats(min_value=0, max_value=1e7), max_size=200),
    st.lists(st.floats(min_value=0, max_value=1e7), max_size=200),
)
def test_merging_is_exactly_adding_the_values(a: list[float], b: list[float]) -> None:
    merged = sketch_of(a)
    merged.merge(sketch_of(b))
    together = sketch_of(a + b)
    assert merged == together
    assert merged.bins == together.bins and merged.zero_count == together.zero_count
    assert merged.count == len(a) + len(b)
    other_way = sketch_of(b)
    other_way.merge(sketch_of(a))
    assert other_way == merged


def test_add_counts_is_adding_each_value_that_many_times() -> None:
    tally = {0.0: 3, 12.0: 5, 30000.0: 1, 0.5: 2}
    counted = Sketch()
    counted.add_counts(tally)
    one_by_one = Sketch()
    for value, n in tally.items():
        for _ in range(n):
            one_by_one.add(value)
    assert counted == one_by_one and counted.count == 11


def test_zero_and_tiny_values_read_back_as_zero() -> None:
    sketch = sketch_of([0.0, 0.0, MIN_VALUE / 2, 5.0])
    assert sketch.zero_count == 3
    assert sketch.quantile(0.5) == 0.0


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_values_that_are_not_durations_are_refused(value: float) -> None:
    with pytest.raises(ValueError):
        Sketch().add(value)
    with pytest.raises(ValueError):
        Sketch().add_counts({value: 1})


def test_an_empty_sketch_has_no_quantiles() -> None:
    sketch = Sketch()
    assert (sketch.count, sketch.quantile(0.5), sketch.min, sketch.max) == (0, None, None, None)
    assert sketch.quantiles((0.5, 0.99)) == [None, None]


def test_quantiles_in_any_order_match_one_by_one() -> None:
    sketch = sketch_of([float(n) for n in range(1, 1001)])
    asked = [0.99, 0.5, 0.0, 0.95]
    assert sketch.quantiles(asked) == [sketch.quantile(q) for q in asked]
    with pytest.raises(ValueError):
        sketch.quantile(1.5)


def test_sketches_of_different_accuracy_do_not_merge() -> None:
    with pytest.raises(ValueError):
        Sketch(0.01).merge(Sketch(0.02))


def test_storage_round_trip_through_json() -> None:
    rng = random.Random(3)
    sketch = sketch_of([rng.lognormvariate(3, 1) for _ in range(1000)] + [0.0])
    stored = json.loads(json.dumps(sketch.to_dict()))
    assert Sketch.from_dict(stored) == sketch
    assert Sketch.from_dict(json.loads(json.dumps(Sketch().to_dict()))) == Sketch()
    # Compact: about 1,000 timings fit in a few hundred keys.
    assert len(stored["keys"]) < 400


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("keys"),
        lambda d: d["counts"].append(1),
        lambda d: d["counts"].__setitem__(0, 0),
        lambda d: d["keys"].__setitem__(0, "x"),
        lambda d: d.__setitem__("zero", -1),
        lambda d: d.__setitem__("min", None),
        lambda d: d.__setitem__("alpha", 2),
        lambda d: d["keys"].__setitem__(1, d["keys"][0]),
    ],
)
def test_damaged_storage_is_refused(damage) -> None:
    stored = sketch_of([1.0, 10.0, 100.0]).to_dict()
    damage(stored)
    with pytest.raises(ValueError):
        Sketch.from_dict(stored)


@settings(max_examples=200)
@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), max_size=50),
    st.lists(st.floats(0, 1e6, allow_nan=False), max_size=50),
)
def test_merging_a_stored_sketch_equals_merging_it_decoded(a: list[float], b: list[float]) -> None:
    # merge_dict is compaction's fast path: the same sketch as from_dict then merge.
    stored = json.loads(json.dumps(sketch_of(b).to_dict()))
    slow, fast = sketch_of(a), sketch_of(a)
    slow.merge(Sketch.from_dict(stored))
    fast.merge_dict(stored)
    assert fast == slow
    assert fast.count == slow.count == len(a) + len(b)
    assert fast.quantiles(QS) == slow.quantiles(QS)


def test_merging_a_stored_sketch_takes_the_slow_path_for_unusual_shapes() -> None:
    # Tuples, string bounds and int bounds are what from_dict accepts too.
    stored = sketch_of([1.0, 10.0, 100.0]).to_dict()
    unusual = {**stored, "keys": tuple(stored["keys"]), "min": str(stored["min"])}
    slow, fast = sketch_of([5.0]), sketch_of([5.0])
    slow.merge(Sketch.from_dict(unusual))
    fast.merge_dict(unusual)
    assert fast == slow


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("keys"),
        lambda d: d["counts"].append(1),
        lambda d: d["counts"].__setitem__(0, 0),
        lambda d: d["counts"].__setitem__(0, True),
        lambda d: d["keys"].__setitem__(0, "x"),
        lambda d: d.__setitem__("zero", -1),
        lambda d: d.__setitem__("min", None),
        lambda d: d.__setitem__("min", float("nan")),
        lambda d: d.__setitem__("max", 0.5),
        lambda d: d.__setitem__("alpha", 2),
        lambda d: d.__setitem__("alpha", 0.02),
        lambda d: d["keys"].__setitem__(1, d["keys"][0]),
    ],
)
def test_a_damaged_stored_sketch_is_refused_when_merged(damage) -> None:
    stored = sketch_of([1.0, 10.0, 100.0]).to_dict()
    damage(stored)
    with pytest.raises(ValueError):
        Sketch().merge_dict(stored)
