"""A mergeable latency histogram with relative error: quantiles of millions of timings in a
few hundred integers, and two histograms merge exactly by adding bucket counts.

The DDSketch idea (Masson, Rim, Lee, VLDB 2019): with gamma = (1 + a) / (1 - a), value v > 0
goes to bucket k = ceil(log_gamma(v)), which holds (gamma^(k-1), gamma^k]; answering any
value in a bucket with 2 gamma^k / (gamma + 1) is within a relative error a of it. With
a = 1%, 1 ms to 30 s fits in about 520 buckets, whatever the traffic.

Why not the `ddsketch` package (DataDog's sketches-py 3.0.1, pure Python): measured on this
project's sandbox machine, its `add` costs about 500 ns against about 140 ns here, which
alone would eat a third of the drain's per-line budget (see benchmarks/drain.py); it stores
only through protobuf (another dependency, and JSON would mean reaching into its private
`DenseStore` bins and offset); and it still needs `six`. This module is the small subset the
bot needs: add, merge, quantile, count and a JSON-able dict.

Values are durations: zero (and anything below MIN_VALUE) is counted in a zero bucket and
reads back as 0; a negative or non-finite value is refused. Exact min and max are kept (they
merge exactly too) and quantiles are clamped to them, which only ever moves an answer
closer to the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

RELATIVE_ACCURACY = 0.01
MIN_VALUE = 1e-9  # below this a value counts as zero: log() of it is meaningless noise


class Sketch:
    """Counts per logarithmic bucket. Mutable while it is filled (`add`, `merge`); a Window
    that holds one treats it as frozen and merges into a `copy()`."""

    __slots__ = ("_bins", "_count", "_gamma", "_max", "_min", "_multiplier", "_zero", "alpha")

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError("relative accuracy must be between 0 and 1")
        self.alpha = relative_accuracy
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._multiplier = 1 / math.log(self._gamma)
        self._bins: dict[int, int] = {}
        self._zero = 0
        self._count = 0
        self._min = math.inf
        self._max = -math.inf

    # -- filling ---------------------------------------------------------------------------

    def add(self, value: float, count: int = 1) -> None:
        """Count `value` (a duration, >= 0) `count` times."""
        if count <= 0:
            if count == 0:
                return
            raise ValueError("count must not be negative")
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"a sketch holds durations: {value!r} is not one")
        if value < MIN_VALUE:
            self._zero += count
        else:
            key = math.ceil(math.log(value) * self._multiplier)
            self._bins[key] = self._bins.get(key, 0) + count
        self._count += count
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def add_counts(self, counts: Mapping[float, int]) -> None:
        """Add value -> count pairs (an exact tally of timings): one log() per distinct value."""
        if not counts:
            return
        values = list(counts)
        low, high = min(values), max(values)
        if not (low >= 0 and math.isfinite(high)) or min(counts.values()) < 0:
            raise ValueError("a sketch holds durations, counted zero or more times")
        bins, log, ceil, multiplier = self._bins, math.log, math.ceil, self._multiplier
        for value, count in counts.items():
            if not count:
                continue
            if value < MIN_VALUE:
                self._zero += count
            else:
                key = ceil(log(value) * multiplier)
                bins[key] = bins.get(key, 0) + count
            self._count += count
            if value < self._min:
                self._min = value
            if value > self._max:
                self._max = value

    def merge(self, other: Sketch) -> None:
        """Add every count of `other` into this sketch: exactly as if its values had been added."""
        if other.alpha != self.alpha:
            raise ValueError("cannot merge sketches of different relative accuracy")
        bins = self._bins
        for key, count in other._bins.items():
            bins[key] = bins.get(key, 0) + count
        self._zero += other._zero
        self._count += other._count
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def merge_dict(self, data: Mapping[str, Any]) -> None:
        """`merge(Sketch.from_dict(data))` without building the stored sketch: compaction
        folds tens of thousands of stored sketches a minute, and building each one (then
        walking it again to merge) was most of its time. The checks are `from_dict`'s, made
        with C-speed builtins; anything unusual (another accuracy, tuples, a bad value)
        takes the slow path, which raises `from_dict`'s own ValueError."""
        try:
            alpha, keys, counts = data["alpha"], data["keys"], data["counts"]
            zero, low, high = data["zero"], data["min"], data["max"]
        except (KeyError, TypeError):
            self.merge(Sketch.from_dict(data))  # raises
            return
        if alpha != self.alpha or not _plain(keys, counts, zero, low, high):
            self.merge(Sketch.from_dict(data))  # the exact checks: raises, or merges
            return
        total = zero + sum(counts)
        bins = self._bins
        get = bins.get
        for key, count in zip(keys, counts, strict=True):
            bins[key] = get(key, 0) + count
        self._zero += zero
        self._count += total
        if total:
            self._min = min(self._min, float(low))
            self._max = max(self._max, float(high))

    def copy(self) -> Sketch:
        twin = Sketch(self.alpha)
        twin.merge(self)
        return twin

    # -- reading ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return self._count

    @property
    def min(self) -> float | None:
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        return self._max if self._count else None

    @property
    def bins(self) -> Mapping[int, int]:
        """Bucket key -> count (read-only view, for tests and storage)."""
        return dict(self._bins)

    @property
    def zero_count(self) -> int:
        return self._zero

    def quantile(self, q: float) -> float | None:
        """The value at rank q * (count - 1) (lower rank), within the relative accuracy;
        None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles in one pass over the buckets."""
        wanted = list(qs)
        if any(not 0 <= q <= 1 for q in wanted):
            raise ValueError("quantiles are between 0 and 1")
        if not self._count:
            return [None] * len(wanted)
        order = sorted(range(len(wanted)), key=wanted.__getitem__)
        answers: list[float | None] = [None] * len(wanted)
        keys = iter(sorted(self._bins.items()))
        seen, value = self._zero, 0.0
        for index in order:
            rank = wanted[index] * (self._count - 1)
            while seen <= rank:
                key, count = next(keys)
                seen += count
                value = 2 * self._gamma**key / (self._gamma + 1)
            answers[index] = min(max(value, self._min), self._max)
        return answers

    # -- storage ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: accuracy, zero bucket, exact min/max, and sorted keys with their counts."""
        keys = sorted(self._bins)
        return {
            "alpha": self.alpha,
            "zero": self._zero,
            "min": self.min,
            "max": self.max,
            "keys": keys,
            "counts": [self._bins[key] for key in keys],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sketch:
        """The inverse of `to_dict`; ValueError on anything inconsistent."""
        try:
            sketch = cls(float(data["alpha"]))
            keys, counts, zero = list(data["keys"]), list(data["counts"]), data["zero"]
            low, high = data["min"], data["max"]
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a stored sketch: {error}") from None
        if len(keys) != len(counts) or len(set(keys)) != len(keys):
            raise ValueError("a stored sketch needs one count per distinct key")
        if not all(type(n) is int and n > 0 for n in counts) or type(zero) is not int or zero < 0:
            raise ValueError("a stored sketch's counts are positive integers")
        if not all(type(k) is int for k in keys):
            raise ValueError("a stored sketch's keys are integers")
        sketch._bins = dict(zip(keys, counts, strict=True))
        sketch._zero = zero
        sketch._count = zero + sum(counts)
        if sketch._count:
            if low is None or high is None or not 0 <= float(low) <= float(high):
                raise ValueError("a stored sketch with counts needs 0 <= min <= max")
            sketch._min, sketch._max = float(low), float(high)
        elif low is not None or high is not None:
            raise ValueError("an empty stored sketch has no min or max")
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return (
            self.alpha == other.alpha
            and self._bins == other._bins
            and self._zero == other._zero
            and self.min == other.min
            and self.max == other.max
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Sketch(count={self._count}, min={self.min}, max={self.max})"


def _plain(keys: Any, counts: Any, zero: Any, low: Any, high: Any) -> bool:
    """Whether a stored sketch's parts pass `from_dict`'s checks, in its usual shape: lists
    of ints (distinct keys, positive counts), an int zero count, float or int bounds."""
    if type(keys) is not list or type(counts) is not list or len(keys) != len(counts):
        return False
    if type(zero) is not int or zero < 0:
        return False
    if keys:
        if set(map(type, keys)) != {int} or set(map(type, counts)) != {int}:
            return False
        if min(counts) <= 0 or len(set(keys)) != len(keys):
            return False
    if not keys and not zero:
        return low is None and high is None
    if type(low) not in (int, float) or type(high) not in (int, float):
        return False
    return 0 <= low <= high
