"""Line charts as self-contained SVG text: no library, no font or script fetched, no network.

A chart is drawn once per model materialization (Dagster shows it in the asset's metadata, as a
markdown image with the SVG inlined as a data URI) and, later, in the HTML report. Each series is
one <polyline> with its name in a <title> and a legend entry, so a test (or a person) can count
what was drawn. Missing values (None) break a line instead of pretending a zero.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from datetime import date
from html import escape
from typing import Any

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 34, 46  # margins: axis labels left and below, legend right
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d")


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    y_max: float | None = None,
    y_label: Callable[[float], str] = lambda v: f"{v:g}",
) -> str:
    """An SVG line chart: one line per series over the x labels (evenly spaced), y from 0."""
    if any(len(values) != len(x_labels) for values in series.values()):
        raise ValueError("every series needs one value per x label")
    largest = max((v for values in series.values() for v in values if v is not None), default=0)
    top = y_max if y_max is not None else _nice(largest)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(x_labels) - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{LEFT + i * step:.1f},{TOP + plot_h * (1 - v / top):.1f}"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for k in range(5):  # horizontal grid and y labels
        v = top * k / 4
        y = TOP + plot_h * (1 - k / 4)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_label(v))}</text>'
        )
    every = max(1, -(-len(x_labels) // 8))  # at most ~8 x labels, counted back from the last
    for i, label in enumerate(x_labels):
        if (len(x_labels) - 1 - i) % every == 0:
            x = LEFT + i * step
            y = TOP + plot_h + 16
            out.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle">{escape(label)}</text>')
    for n, (name, values) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        runs: list[list[str]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
            else:
                runs[-1].append(xy(i, value))
        points = [" ".join(run) for run in runs if run]
        out.append(f'<g class="series" data-name="{escape(name)}"><title>{escape(name)}</title>')
        for pts in points:
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        for pts in points:  # a dot per value, so a single day still shows
            for p in pts.split():
                cx, cy = p.split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        out.append("</g>")
        ly = TOP + 14 * n
        out.append(
            f'<rect x="{WIDTH - RIGHT + 12}" y="{ly}" width="10" height="10" fill="{color}"/>'
            f'<text x="{WIDTH - RIGHT + 28}" y="{ly + 9}">{escape(name[:18])}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def asr_per_trunk(title: str, days: Sequence[date], rows: Sequence[tuple[Any, ...]]) -> str:
    """ASR per trunk over `days`, from rows (day, trunk, asr) (sql/trunk_kpis_daily_asr.sql); a
    day without a trunk's row is a gap in its line."""
    asr = {(d, trunk): value for d, trunk, value in rows}
    return line_chart(
        title,
        [d.strftime("%m-%d") for d in days],
        {t: [asr.get((d, t)) for d in days] for t in sorted({r[1] for r in rows})},
        y_max=1.0,
        y_label=lambda v: f"{v:.0%}",
    )


def calls_per_hour(title: str, rows: Sequence[tuple[Any, ...]], *, with_day: bool) -> str:
    """Attempts and peak concurrency per local hour, from rows (hour, day, wall clock, attempts,
    peak) (sql/calls_hourly_by_hour.sql); labels show the day too when the chart spans days."""
    labels = [f"{r[1]:%m-%d} {r[2]}" if with_day else r[2] for r in rows]
    return line_chart(
        title,
        labels,
        {"attempts": [r[3] for r in rows], "peak concurrent": [r[4] for r in rows]},
    )


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= value: round grid lines."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if value <= m * power)


def markdown_image(svg: str, alt: str) -> str:
    """The chart as a markdown image (a data URI): Dagster's markdown metadata shows it."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f"![{alt}](data:image/svg+xml;base64,{data})"
