"""The SVG charts: one group per series, gaps where a value is missing, valid XML, text escaped,
nothing fetched; the hourly chart's own axis for peaks and its ticks on round hours; the bars of
the busiest countries, their answered part and their figures."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from pipelines.charts import (
    Bar,
    bar_chart,
    busiest_countries,
    calls_per_hour,
    line_chart,
    markdown_image,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_each_series_is_one_group_and_a_missing_value_breaks_its_line() -> None:
    svg = line_chart(
        "ASR <per> trunk & day",
        ["11-01", "11-02", "11-03", "11-04"],
        {"twilio": [0.5, 0.6, None, 0.7], "telnyx": [0.2, 0.3, 0.4, 0.5]},
        y_max=1.0,
        y_label=lambda v: f"{v:.0%}",
    )
    root = ET.fromstring(svg)  # well-formed: the title's < and & are escaped
    groups = root.findall(f"{SVG}g")
    assert [g.get("data-name") for g in groups] == ["twilio", "telnyx"]
    twilio, telnyx = groups
    assert len(twilio.findall(f"{SVG}polyline")) == 2  # the gap splits the line
    assert len(twilio.findall(f"{SVG}circle")) == 3
    assert len(telnyx.findall(f"{SVG}polyline")) == 1
    assert len(telnyx.findall(f"{SVG}circle")) == 4
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "ASR <per> trunk & day" in texts
    assert "100%" in texts
    assert "href" not in svg  # nothing to fetch


def test_values_are_placed_from_zero_to_the_top() -> None:
    svg = line_chart("t", ["a", "b"], {"s": [0.0, 10.0]})
    (line,) = ET.fromstring(svg).iter(f"{SVG}polyline")
    (x0, y0), (x1, y1) = (map(float, p.split(",")) for p in line.get("points", "").split())
    assert x1 > x0
    assert y0 > y1  # 0 at the bottom, the largest value at the top


def test_the_axis_ends_at_a_round_number_and_labels_count_back_from_the_last() -> None:
    labels = [f"{h:02d}:00" for h in range(24)]
    svg = line_chart("t", labels, {"s": [float(h * 7 + 25) for h in range(24)]})  # max 186
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert [t for t in texts if t and t.isdigit()] == ["0", "50", "100", "150", "200"]
    assert "23:00" in texts
    assert "22:00" not in texts  # every third hour, back from 23:00
    assert "20:00" in texts


def test_a_series_must_have_a_value_per_label() -> None:
    with pytest.raises(ValueError, match="one value per x label"):
        line_chart("t", ["a", "b"], {"s": [1.0]})


def test_markdown_image_inlines_the_svg() -> None:
    md = markdown_image("<svg/>", "alt text")
    assert md.startswith("![alt text](data:image/svg+xml;base64,")
    assert base64.b64decode(md.split(",", 1)[1].rstrip(")")) == b"<svg/>"


def _hourly_rows(days: list[date], tz: str = "UTC") -> list[tuple[object, ...]]:
    """calls_hourly_by_hour rows: every local hour of the days, attempts up to 190, peaks up to
    8, as the simulator's busy days look."""
    zone = ZoneInfo(tz)
    rows: list[tuple[object, ...]] = []
    for day in days:
        hour = datetime.combine(day, time(0), zone).astimezone(UTC)
        while hour.astimezone(zone).date() == day:
            local = hour.astimezone(zone)
            rows.append((hour, day, f"{local:%H:%M}", 10 + (local.hour * 15) % 181, local.hour % 9))
            hour += timedelta(hours=1)
    return rows


def _panels(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(f"{SVG}g[@class='panel']")


def _texts(element: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text") if t.get("class") == cls]


def test_peak_concurrency_has_a_panel_and_an_axis_of_its_own() -> None:
    """8 concurrent calls on an axis of 190 attempts would be a flat line at the bottom."""
    days = [date(2026, 11, 20), date(2026, 11, 21)]
    svg = calls_per_hour("t", _hourly_rows(days), days, "UTC")
    upper, lower = _panels(svg)
    assert [g.get("data-name") for g in upper.findall(f".//{SVG}g[@class='series']")] == [
        "attempts"
    ]
    assert [g.get("data-name") for g in lower.findall(f".//{SVG}g[@class='series']")] == [
        "peak concurrent"
    ]
    assert _texts(upper, "y") == ["0", "50", "100", "150", "200"]
    assert _texts(lower, "y") == ["0", "2", "4", "6", "8"]  # whole calls, the largest at the top
    (line,) = lower.iter(f"{SVG}polyline")
    ys = [float(p.split(",")[1]) for p in (line.get("points") or "").split()]
    assert max(ys) - min(ys) > 80  # spans the panel's height, not a flat line


@pytest.mark.parametrize(
    ("days", "tz", "width", "expected"),
    [
        # one day, Dagster's 720 px: every second hour
        ([date(2026, 11, 20)], "UTC", 720, [f"{h:02d}:00" for h in range(0, 24, 2)]),
        # a 25-hour day (01:00 twice): too many for every second hour, so every third
        (
            [date(2026, 11, 1)],
            "America/New_York",
            720,
            [f"{h:02d}:00" for h in range(0, 24, 3)],
        ),
        # 14 days across the report's page: each day at midnight, and noon
        (
            [date(2026, 11, 13) + timedelta(days=k) for k in range(14)],
            "UTC",
            1360,
            [x for k in range(14) for x in (f"11-{13 + k:02d}", "12:00")],
        ),
        # 14 days in 720 px: every second midnight
        (
            [date(2026, 11, 13) + timedelta(days=k) for k in range(14)],
            "UTC",
            720,
            [f"11-{13 + k:02d}" for k in range(0, 14, 2)],
        ),
    ],
)
def test_hour_ticks_fall_on_round_local_hours(
    days: list[date], tz: str, width: int, expected: list[str]
) -> None:
    svg = calls_per_hour("t", _hourly_rows(days, tz), days, tz, width=width)
    for panel in _panels(svg):
        assert _texts(panel, "x") == expected


def test_a_day_without_rows_is_a_gap_in_its_place() -> None:
    """Three days, the middle one never loaded: its 24 hours keep their place, empty."""
    days = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]
    rows = [r for r in _hourly_rows(days) if r[1] != days[1]]
    svg = calls_per_hour("t", rows, days, "UTC", width=1360)
    upper, _ = _panels(svg)
    first, last = (
        [float(p.split(",")[0]) for p in (line.get("points") or "").split()]
        for line in upper.iter(f"{SVG}polyline")
    )
    assert len(first) == len(last) == 24
    step = (first[-1] - first[0]) / 23
    assert last[0] - first[-1] == pytest.approx(25 * step, abs=1)  # 23:00 to 00:00 two days on
    assert [t for t in _texts(upper, "x") if "-" in t] == ["11-20", "11-21", "11-22"]


def test_bars_keep_their_order_and_their_part_is_its_share_of_the_bar() -> None:
    svg = bar_chart(
        "Countries <&>",
        [Bar("US", 11_091, 7_400, "a"), Bar("(no country)", 2_824, 1_873, "b"), Bar("GB", 3, 0)],
    )
    root = ET.fromstring(svg)
    bars = root.findall(f"{SVG}g[@class='bar']")
    assert [g.get("data-name") for g in bars] == ["US", "(no country)", "GB"]
    widths = [
        {r.get("class"): float(r.get("width") or 0) for r in g.iter(f"{SVG}rect")} for g in bars
    ]
    us, other, gb = widths
    assert us["part"] / (us["part"] + us["rest"]) == pytest.approx(7_400 / 11_091, abs=1e-3)
    assert (other["part"] + other["rest"]) / (us["part"] + us["rest"]) == pytest.approx(
        2_824 / 11_091, abs=1e-3
    )
    assert gb["part"] == 0
    ys = [float(next(g.iter(f"{SVG}rect")).get("y") or 0) for g in bars]
    assert ys == sorted(ys)  # the first at the top
    # an axis of counts from 0, in steps of 2,000 up to the first round number past the largest
    assert _texts(root, "x") == [f"{k:,}" for k in range(0, 12_001, 2_000)]
    assert "Countries <&>" in [t.text for t in root.iter(f"{SVG}text")]


def test_the_busiest_countries_say_their_attempts_and_asr() -> None:
    rows = [("US", 11_091, 7_400, 0.667), ("001", 8, 2, 0.25)]
    root = ET.fromstring(busiest_countries("t", rows))
    assert _texts(root, "note") == ["11,091 attempts, ASR 66.7%", "8 attempts, ASR 25.0%"]
    assert _texts(root, "label") == ["US", "001"]
    assert "href" not in busiest_countries("t", rows)


def test_a_bar_chart_without_bars_says_so() -> None:
    root = ET.fromstring(bar_chart("t", []))
    assert not root.findall(f"{SVG}g[@class='bar']")
    assert "no data" in [t.text for t in root.iter(f"{SVG}text")]
