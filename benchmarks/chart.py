"""Chart render time: 24 h at one-minute resolution (1440 points per series), as
`/deploy chart APP 24h` draws it, beside a baseline of the same data drawn plainly.

- ours: `bot.metrics.chart.render`: three panels (requests per minute; p95 service and
  queue time against a target; web dynos as steps with scaling marks), incidents shaded,
  dates on the axis, written as PNG with its metadata;
- baseline: one `Figure` and Agg canvas, one axes, the requests line only, same size and
  dpi, `savefig` to PNG: the least a chart of this data costs with matplotlib.

Both are timed warm (the first render, which loads fonts and builds matplotlib's caches, is
printed apart), best and median of --repeat runs. Goal: ours <= 300 ms. Missing it is
reported, not an error. The numbers are seeded, so every run draws the same picture.

    .venv/bin/python benchmarks/chart.py [--repeat 10] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import statistics
import time
from collections.abc import Callable

from bot.metrics.chart import DPI, HEIGHT_IN, WIDTH_IN, render
from bot.metrics.chart_data import ChartData, Mark, Shade, web_steps

GOAL_MS = 300.0
POINTS = 24 * 60


def day_of_traffic(seed: int = 18) -> ChartData:
    """A seeded day: a daily wave of traffic, latency following it, six scaling marks."""
    rng = random.Random(seed)
    since = 1_800_000_000 // 86400 * 86400
    until = since + POINTS * 60
    requests = tuple(
        int(600 + 500 * math.sin(i / POINTS * 2 * math.pi) + rng.uniform(0, 80))
        for i in range(POINTS)
    )
    service = tuple(150 + r / 10 + rng.uniform(0, 30) for r in requests)
    queue = tuple(max(1.0, (r - 900) / 2) + rng.uniform(0, 5) for r in requests)
    counts = (2, 3, 4, 5, 4, 3, 2)
    marks = tuple(
        Mark(since + (i + 1) * 3 * 3600, counts[i], counts[i + 1], "autoscaler") for i in range(6)
    )
    return ChartData(
        app="bench",
        since=since,
        until=until,
        step=60,
        requests=requests,
        service_p95=service,
        queue_p95=queue,
        web=web_steps(marks, counts[-1], since, until),
        marks=marks,
        shades=(Shade(since + 7 * 3600, since + 8 * 3600, "slow"),),
        target=("queue_p95", 300.0),
    )


def baseline(data: ChartData) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(len(data.requests)), data.rates)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def timed(draw: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        draw()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = day_of_traffic()
    started = time.perf_counter()
    first = render(data)
    cold_ms = (time.perf_counter() - started) * 1000
    ours = timed(lambda: render(data), args.repeat)
    base = timed(lambda: baseline(data), args.repeat)
    result = {
        "points": POINTS,
        "png_bytes": len(first.png),
        "cold_ms": round(cold_ms, 1),
        "ours_best_ms": round(min(ours), 1),
        "ours_median_ms": round(statistics.median(ours), 1),
        "baseline_best_ms": round(min(base), 1),
        "baseline_median_ms": round(statistics.median(base), 1),
        "goal_ms": GOAL_MS,
        "goal_met": min(ours) <= GOAL_MS,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"chart of 24 h at one-minute resolution ({POINTS} points a series), best of {args.repeat}"
    )
    print(
        f"  ours (3 panels, marks, shading, dates) {result['ours_best_ms']:7.1f} ms  (median {result['ours_median_ms']:.1f}; first, cold {result['cold_ms']:.0f})"
    )
    print(
        f"  baseline (one line, same size)        {result['baseline_best_ms']:7.1f} ms  (median {result['baseline_median_ms']:.1f})"
    )
    print(
        f"  PNG {result['png_bytes']:,} bytes; goal <= {GOAL_MS:.0f} ms: {'met' if result['goal_met'] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
