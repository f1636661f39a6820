"""Line and bar charts as self-contained SVG text: no library, no font or script fetched, no
network.

A chart is drawn once per model materialization (Dagster shows it in the asset's metadata, as a
markdown image with the SVG inlined as a data URI) and, later, in the HTML report. Each series is
one <polyline> with its name in a <title> and a legend entry, so a test (or a person) can count
what was drawn. Missing values (None) break a line instead of pretending a zero. A chart of
quantities of different size (attempts and concurrent calls) is panels one above the other, each
a <g class="panel"> with its own y axis, not two scales on one axis. A bar chart is horizontal
(its labels are read as written, however long): one <g class="bar"> a bar, its first part (the
answered calls of the attempts) filled darker, its figures written after its end.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 34, 46  # margins: axis labels left and below, legend right
ONE_HOUR, ONE_DAY = timedelta(hours=1), timedelta(days=1)
DOTS_UP_TO = 62  # x positions: beyond, only a lone value gets a dot
TICK_ROOM = 40  # px per x label, at least
PALE = "#bfdbfe"  # the rest of a bar whose part is COLORS[0]
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d")


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    y_max: float | None = None,
    y_label: Callable[[float], str] = "{:g}".format,
) -> str:
    """An SVG line chart: one line per series over the x labels (evenly spaced), y from 0; at
    most ~8 x labels, counted back from the last."""
    return _svg(WIDTH, HEIGHT, _panel(title, x_labels, series, y_max, y_label, None, WIDTH, HEIGHT))


def _svg(width: int, height: int, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            *body,
            "</svg>",
        ]
    )


def _panel(
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    y_max: float | None,
    y_label: Callable[[float], str],
    ticks: dict[int, str] | None,
    width: int,
    height: int,
    first_color: int = 0,
) -> list[str]:
    """The elements of one chart with its own y axis, drawn at (0, 0). ticks: the x positions to
    label and their text, each with a vertical grid line; None: ~8 labels back from the last."""
    if any(len(values) != len(x_labels) for values in series.values()):
        raise ValueError("every series needs one value per x label")
    largest = max((v for values in series.values() for v in values if v is not None), default=0)
    top = y_max if y_max is not None else _nice(largest)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    step = plot_w / max(len(x_labels) - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{LEFT + i * step:.1f},{TOP + plot_h * (1 - v / top):.1f}"

    out = [f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    for k in range(5):  # horizontal grid and y labels
        v = top * k / 4
        y = TOP + plot_h * (1 - k / 4)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(
            f'<text class="y" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(y_label(v))}</text>"
        )
    if ticks is None:
        every = max(1, -(-len(x_labels) // 8))  # at most ~8 x labels, counted back from the last
        ticks = {
            i: x_labels[i] for i in range(len(x_labels)) if (len(x_labels) - 1 - i) % every == 0
        }
    else:  # chosen positions: a vertical grid line at each
        for i in ticks:
            x = LEFT + i * step
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#eee"/>'
            )
    for i, label in sorted(ticks.items()):
        x, y = LEFT + i * step, TOP + plot_h + 16
        out.append(
            f'<text class="x" x="{x:.1f}" y="{y}" text-anchor="middle">{escape(label)}</text>'
        )
    for n, (name, values) in enumerate(series.items()):
        color = COLORS[(first_color + n) % len(COLORS)]
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
        for pts in points:  # a dot per value, so a lone value still shows
            if len(x_labels) > DOTS_UP_TO and " " in pts:
                continue  # hundreds of dots would blur a line: only lone values get one
            for p in pts.split():
                cx, cy = p.split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        out.append("</g>")
        ly = TOP + 14 * n
        out.append(
            f'<rect x="{width - RIGHT + 12}" y="{ly}" width="10" height="10" fill="{color}"/>'
            f'<text x="{width - RIGHT + 28}" y="{ly + 9}">{escape(name[:18])}</text>'
        )
    return out


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


def calls_per_hour(
    title: str,
    rows: Sequence[tuple[Any, ...]],
    days: Sequence[date],
    tz: str,
    *,
    width: int = WIDTH,
) -> str:
    """Attempts per local hour of `days` (in `tz`) above peak concurrency per hour, each panel
    with its own y axis (a peak of 8 on an axis of 190 attempts is a flat line), from rows (hour,
    day, wall clock, attempts, peak) (sql/calls_hourly_by_hour.sql).

    The x axis holds every hour of the days, so a day without rows is a gap in its place. An hour
    without a row on a day with rows, before the newest row, had no attempts (0); later ones may
    be still to come (today's: a gap), and a peak without a row is unknown (a gap). Ticks fall
    on round local hours: every 1, 2, 3, 6 or 12 hours, or at midnight every 1, 2, 7, ... days,
    the finest that leaves each label TICK_ROOM px."""
    zone = ZoneInfo(tz)
    slots = {(r[0], r[1]) for r in rows}
    for day in days:  # local midnight to midnight, as pipelines.partitions.day_window (not
        # imported: it would bring Dagster into the report's process)
        start, end = (
            datetime.combine(d, time(0), zone).astimezone(UTC) for d in (day, day + ONE_DAY)
        )
        slots.update((start + k * ONE_HOUR, day) for k in range((end - start) // ONE_HOUR))
    hours = sorted(slots)
    by_hour = {r[0]: r for r in rows}
    loaded, newest = {r[1] for r in rows}, max((r[0] for r in rows), default=None)
    attempts = [
        by_hour[h][3] if h in by_hour else (0 if d in loaded and newest and h < newest else None)
        for h, d in hours
    ]
    peaks = [by_hour[h][4] if h in by_hour else None for h, _ in hours]
    local = [h.astimezone(zone) for h, _ in hours]
    room = (width - LEFT - RIGHT) // TICK_ROOM
    step = next(s for s in (1, 2, 3, 6, 12, 24, 48, 168, 336, 672, 10**9) if len(hours) / s <= room)
    ticks = {
        i: f"{t:%m-%d}" if t.hour == 0 and len(days) > 1 else f"{t:%H:%M}"
        for i, t in enumerate(local)
        if t.minute == 0
        and (
            t.hour % step == 0
            if step < 24
            else t.hour == 0 and (t.date() - days[0]).days % (step // 24) == 0
        )
    }
    labels = [f"{t:%m-%d %H:%M}" for t in local]
    upper, lower = 230, 170  # px: attempts above, the peaks below
    return _svg(
        width,
        upper + lower,
        [
            '<g class="panel">',
            *_panel(
                title, labels, {"attempts": attempts}, None, "{:g}".format, ticks, width, upper
            ),
            "</g>",
            f'<g class="panel" transform="translate(0,{upper})">',
            *_panel(
                "Peak concurrent calls per hour (of the busiest trunk and direction)",
                labels,
                {"peak concurrent": peaks},
                _whole(max(filter(None, peaks), default=0)),
                "{:g}".format,
                ticks,
                width,
                lower,
                first_color=1,
            ),
            "</g>",
        ],
    )


@dataclass(frozen=True)
class Bar:
    """One bar of `bar_chart`: `value` long, its first `part` of it filled darker, `note` written
    after its end."""

    label: str
    value: float
    part: float = 0.0
    note: str = ""


BAR_ROW, BAR_HEIGHT = 26, 18  # px: a bar's row, and the bar in it
BAR_LABELS, BAR_NOTES = 110, 200  # px: the labels left of the bars, the notes after the longest


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    names: tuple[str, str] = ("answered", "not answered"),
    width: int = WIDTH,
) -> str:
    """Horizontal bars in the given order (the first at the top) on an axis of counts from 0,
    each a <g class="bar"> named by its label; `names` are the legend's words for a bar's part
    and for the rest of it."""
    top, step = _counts(max((b.value for b in bars), default=0))
    plot_w = width - BAR_LABELS - BAR_NOTES
    axis = TOP + BAR_ROW * max(len(bars), 1)
    out = [f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    for n, (name, color) in enumerate(zip(names, (COLORS[0], PALE), strict=True)):
        at = width - BAR_NOTES + 20 + 80 * n
        out.append(
            f'<rect x="{at}" y="11" width="10" height="10" fill="{color}"/>'
            f'<text x="{at + 14}" y="20">{escape(name)}</text>'
        )
    for k in range(round(top / step) + 1):  # vertical grid and x labels
        x = BAR_LABELS + plot_w * k * step / top
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{axis}" stroke="#ddd"/>')
        out.append(
            f'<text class="x" x="{x:.1f}" y="{axis + 16}" text-anchor="middle">'
            f"{k * step:,.0f}</text>"
        )
    if not bars:
        out.append(f'<text x="{BAR_LABELS + 8}" y="{TOP + 17}" fill="#555">no data</text>')
    for i, bar in enumerate(bars):
        y = TOP + i * BAR_ROW + (BAR_ROW - BAR_HEIGHT) / 2
        whole, part = plot_w * bar.value / top, plot_w * min(bar.part, bar.value) / top
        label, note = escape(bar.label[:18]), escape(bar.note)
        out += [
            f'<g class="bar" data-name="{escape(bar.label)}"><title>{label}: {note}</title>',
            f'<text class="label" x="{BAR_LABELS - 8}" y="{y + 13:.1f}" text-anchor="end">'
            f"{label}</text>",
            f'<rect class="part" x="{BAR_LABELS}" y="{y:.1f}" width="{part:.1f}" '
            f'height="{BAR_HEIGHT}" fill="{COLORS[0]}"/>',
            f'<rect class="rest" x="{BAR_LABELS + part:.1f}" y="{y:.1f}" '
            f'width="{whole - part:.1f}" height="{BAR_HEIGHT}" fill="{PALE}"/>',
            f'<text class="note" x="{BAR_LABELS + whole + 6:.1f}" y="{y + 13:.1f}">{note}</text>',
            "</g>",
        ]
    return _svg(width, axis + 28, out)


def busiest_countries(title: str, rows: Sequence[tuple[Any, ...]], *, width: int = WIDTH) -> str:
    """Attempts per far-end country, the answered ones darker, attempts and ASR written after each
    bar, from rows (country, attempts, answered, ...) in their order, the busiest first
    (reports/destinations_busiest.sql)."""
    return bar_chart(
        title,
        [
            Bar(
                str(country),
                attempts,
                answered,
                f"{attempts:,} attempts, ASR {answered / attempts:.1%}",
            )
            for country, attempts, answered, *_ in rows
        ],
        width=width,
    )


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= value: round grid lines."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if value <= m * power)


def _counts(value: float) -> tuple[float, float]:
    """An axis of counts up to `value`: (its top, its step), the step 1, 2 or 5 times a power of
    ten, the finest that needs at most 6 of them (11,091 attempts: up to 12,000 by 2,000)."""
    step = next(m * 10**e for e in range(18) for m in (1, 2, 5) if 6 * m * 10**e >= value)
    return float(max(1, math.ceil(value / step)) * step), float(step)


def _whole(value: float) -> float:
    """The top of an axis of counts: four grid steps of 1, 2 or 5 times a power of ten (peaks of
    8 calls get 2, 4, 6, 8; _nice would give 2.5 calls)."""
    return float(
        next(4 * m * 10**e for e in range(18) for m in (1, 2, 5) if 4 * m * 10**e >= value)
    )


def markdown_image(svg: str, alt: str) -> str:
    """The chart as a markdown image (a data URI): Dagster's markdown metadata shows it."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f"![{alt}](data:image/svg+xml;base64,{data})"
