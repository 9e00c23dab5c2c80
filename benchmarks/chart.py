"""Chart render time: 24 h at one-minute resolution (1440 points per series), as
`/deploy chart APP 24h` draws it, beside a baseline of the same data drawn plainly.

- ours: `bot.metrics.chart.render`: three panels (requests per minute; p95 service and
  queue time against a target; web dynos as steps with scaling marks), incidents shaded,
  dates on the axis, written as PNG with its metadata;
- baseline: one `Figure` and Agg canvas, one axes, the requests line only, same size and
  dpi, `savefig` to PNG: the least a chart of this data costs with matplotlib.

Both are timed warm (the first render, which loads fonts and builds matplotlib's caches, is
printed apart), on one core, interleaved, best and median of --repeat runs each, in wall
time and in the process's CPU time (on a busy shared machine the wall clock also counts
other processes' turns; the goal is judged on CPU time). Goal: ours <= 300 ms. Missing it is
reported, not an error. The numbers are seeded, so every run draws the same picture.

    .venv/bin/python benchmarks/chart.py [--repeat 10] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
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


def timed(draw: Callable[[], object], repeat: int) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) per run. On a shared machine the wall clock counts other people's
    work too; the process's CPU time counts only the render's."""
    times = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        draw()
        times.append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
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
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as on a dyno
    # Interleaved, so a busy machine slows both alike; the best run is the least disturbed.
    ours: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        ours += timed(lambda: render(data), 1)
        base += timed(lambda: baseline(data), 1)
    ours_cpu, base_cpu = min(c for _, c in ours), min(c for _, c in base)
    result = {
        "points": POINTS,
        "png_bytes": len(first.png),
        "cold_ms": round(cold_ms, 1),
        "ours_best_ms": round(min(w for w, _ in ours), 1),
        "ours_median_ms": round(statistics.median(w for w, _ in ours), 1),
        "ours_best_cpu_ms": round(ours_cpu, 1),
        "baseline_best_ms": round(min(w for w, _ in base), 1),
        "baseline_median_ms": round(statistics.median(w for w, _ in base), 1),
        "baseline_best_cpu_ms": round(base_cpu, 1),
        "goal_ms": GOAL_MS,
        "goal_met": ours_cpu <= GOAL_MS,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"chart of 24 h at one minute ({POINTS} points a series), best of {args.repeat}")
    print("                                          wall ms   CPU ms  (median wall)")
    print(
        f"  ours (3 panels, marks, shading, dates) {result['ours_best_ms']:8.1f} "
        f"{result['ours_best_cpu_ms']:8.1f}  ({result['ours_median_ms']:.1f}; first, cold "
        f"{result['cold_ms']:.0f})"
    )
    print(
        f"  baseline (one line, same size)        {result['baseline_best_ms']:8.1f} "
        f"{result['baseline_best_cpu_ms']:8.1f}  ({result['baseline_median_ms']:.1f})"
    )
    met = "met" if result["goal_met"] else "NOT met"
    print(f"  PNG {result['png_bytes']:,} bytes; goal <= {GOAL_MS:.0f} ms of CPU: {met}")


if __name__ == "__main__":
    main()
