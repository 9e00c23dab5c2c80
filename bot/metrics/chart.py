"""Draw a `ChartData` as a PNG with matplotlib's Agg backend.

Three panels share the time axis: requests per minute; p95 service and queue time against
the autoscaler's target; the web dyno count as a step line with each scaling decision marked.
Incidents are shaded across all three.

matplotlib is imported inside `render`, never at module import, so the web dyno's start-up
and its acks do not pay for it; only a background job drawing a chart does. The figure is
built with `Figure` and an Agg canvas directly (no pyplot): no global state, safe from the
background pool's threads.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.metrics.chart_data import ChartData

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 6.4, 100
_DAY = 86400.0
_TARGET_LABEL = {"service_p95": "service", "queue_p95": "queue"}


@dataclass(frozen=True)
class Rendered:
    """The PNG and the numbers actually drawn, read back from the plotted lines."""

    png: bytes
    plotted: dict[str, Any]


def render(data: ChartData) -> Rendered:
    """The chart as PNG bytes. Raises ValueError for data with no requests at all: a chart
    of nothing says nothing, so callers say so in words instead."""
    if not data.total:
        raise ValueError(f"no requests recorded for {data.app}")
    from matplotlib import dates as mdates  # lazily: see the module docstring
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    # Fixed margins, not a layout engine: constrained layout measured every tick label on
    # each draw and took half the render time (benchmarks/chart.py).
    traffic, latency, dynos = figure.subplots(
        3,
        1,
        sharex=True,
        gridspec_kw={
            "height_ratios": (3, 3, 2),
            "left": 0.08,
            "right": 0.97,
            "top": 0.95,
            "bottom": 0.08,
            "hspace": 0.22,
        },
    )
    x = [(data.since + i * data.step) / _DAY for i in range(len(data.requests))]
    rates = [_nan(rate) for rate in data.drawn_rates]

    (rate_line,) = traffic.plot(x, rates, color="#1f77b4", linewidth=1.0, drawstyle="steps-post")
    # Not stepped: half the vertices, and at a pixel a minute the eye sees no difference.
    traffic.fill_between(x, rates, color="#1f77b4", alpha=0.15, linewidth=0)
    traffic.set_ylabel("requests / min")
    traffic.set_ylim(bottom=0)
    # "3M", not "3" under a "1e6" in the corner that a glance misses.
    traffic.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _count(value)))
    # A figure text, not an axes title: a title is re-measured against the ticks each draw.
    title = figure.text(0.08, 0.965, f"{data.title} ({data.zone})", fontsize=11)

    service = [_nan(v) for v in data.service_p95]
    queue = [_nan(v) for v in data.queue_p95]
    (service_line,) = latency.plot(x, service, color="#d62728", linewidth=1.0, label="p95 service")
    (queue_line,) = latency.plot(x, queue, color="#ff7f0e", linewidth=1.0, label="p95 queue")
    if data.target and data.target[0] in _TARGET_LABEL:
        latency.axhline(
            data.target[1],
            color="#555555",
            linestyle="--",
            linewidth=1.0,
            label=f"target ({_TARGET_LABEL[data.target[0]]} {data.target[1]:g} ms)",
        )
    latency.set_ylabel("ms")
    known = [v for v in (*data.service_p95, *data.queue_p95) if v]
    if known and max(known) > 20 * max(min(known), 1.0):
        # A spike of seconds would flatten everyday milliseconds and the target to a line.
        latency.set_yscale("log")
        # Log axes draw a dozen minor ticks per decade, each a Line2D: a third of the render.
        latency.yaxis.set_minor_locator(NullLocator())
        # One label a decade left a spike from 20 to 700 ms with "100" alone: over a few
        # decades, 2 and 5 of each are labelled too.
        top = max([*known, data.target[1] if data.target else 0.0])
        few = top / max(min(known), 1.0) < 1000
        latency.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if few else (1.0,)))
        # Plain numbers (100, 1000), not 10² through mathtext, which is slow and less clear.
        latency.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    else:
        latency.set_ylim(bottom=0)
    if not known:
        # An empty panel under made-up ticks (0.00 … 0.05 ms) reads as a fast app.
        latency.text(
            0.5,
            0.5,
            "No latency was recorded in this span.",
            transform=latency.transAxes,
            ha="center",
            va="center",
            color="#777777",
        )
        if not data.target:
            latency.set_yticks([])
    # Above the panel, in the gap between panels: inside it would hide the lines.
    latency.legend(
        loc="lower left",
        bbox_to_anchor=(0, 0.99),
        fontsize=8,
        frameon=False,
        ncols=3,
        borderaxespad=0,
        handlelength=1.5,
    )

    web_x = [t / _DAY for t, _ in data.web]
    web_y = [count for _, count in data.web]
    web_line = None
    if data.web:
        (web_line,) = dynos.plot(
            web_x, web_y, color="#2ca02c", linewidth=1.5, drawstyle="steps-post"
        )
        if data.target and data.target[0] == "rpm":
            # An rpm target is per dyno: what the dynos running could serve at it.
            traffic.plot(
                web_x,
                [count * data.target[1] for count in web_y],
                color="#555555",
                linestyle="--",
                linewidth=1.0,
                drawstyle="steps-post",
            )
    for direction, marker, color in ((1, "^", "#2ca02c"), (-1, "v", "#9467bd")):
        chosen = [m for m in data.marks if (m.after > m.before) == (direction > 0)]
        if chosen:
            dynos.scatter(
                [m.at / _DAY for m in chosen],
                [m.after for m in chosen],
                marker=marker,
                color=color,
                zorder=3,
                s=30,
            )
    dynos.set_ylabel(f"web {data.unit}s")
    dynos.set_ylim(0, max([*web_y, 1]) + 1)
    dynos.yaxis.get_major_locator().set_params(integer=True)

    for shade in data.shades:
        for axes in (traffic, latency, dynos):
            axes.axvspan(shade.start / _DAY, shade.end / _DAY, color="#d62728", alpha=0.12, lw=0)

    dynos.set_xlim(data.since / _DAY, data.until / _DAY)
    zone = ZoneInfo(data.zone)
    locator = mdates.AutoDateLocator(tz=zone, maxticks=8)
    dynos.xaxis.set_major_locator(locator)
    dynos.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    for axes in (traffic, latency, dynos):
        axes.grid(True, color="#dddddd", linewidth=0.5)
        axes.spines[["top", "right"]].set_visible(False)

    plotted = {
        "requests_per_minute": [_none(v) for v in rate_line.get_ydata()],
        "service_p95": [_none(v) for v in service_line.get_ydata()],
        "queue_p95": [_none(v) for v in queue_line.get_ydata()],
        "web": [int(v) for v in web_line.get_ydata()] if web_line is not None else [],
        "marks": len(data.marks),
        "shades": len(data.shades),
    }
    summary = {"app": data.app, "requests": data.total, "points": len(x), "zone": data.zone}
    canvas.draw()
    plotted["title"] = title.get_text()
    plotted["time_ticks"] = [
        (label.get_text(), round(label.get_position()[0] * _DAY))
        for label in dynos.get_xticklabels()
        if data.since <= label.get_position()[0] * _DAY <= data.until
    ]
    plotted["traffic_ticks"] = _tick_labels(traffic)
    plotted["latency_ticks"] = _tick_labels(latency)
    plotted["latency_note"] = latency.texts[0].get_text() if latency.texts else None
    width, height = canvas.get_width_height()
    # The figure is opaque: an RGB PNG encodes in half the time of matplotlib's RGBA one,
    # and zlib level 3 is faster than the default 6 for a few percent more bytes.
    image = Image.frombuffer(
        "RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1
    ).convert("RGB")
    info = PngInfo()
    info.add_text("Software", "deploybot")
    info.add_text("Description", json.dumps(summary))
    out = io.BytesIO()
    image.save(out, "png", pnginfo=info, compress_level=3)
    return Rendered(out.getvalue(), plotted)


def _tick_labels(axes: Any) -> list[str]:
    """The y labels shown, as drawn (after `canvas.draw()`), each with its offset text."""
    low, high = axes.get_ylim()
    formatter = axes.yaxis.get_major_formatter()
    labels = [formatter(value, 0) for value in axes.get_yticks() if low <= value <= high]
    offset = axes.yaxis.get_offset_text().get_text()
    return [f"{label}{offset and ' ' + offset}" for label in labels]


def _count(value: float) -> str:
    """A request rate as an axis label: 950, 12k, 2.5M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{round(value / size, 2):g}{suffix}"
    return f"{value:g}"


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
