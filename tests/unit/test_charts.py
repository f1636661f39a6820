"""The SVG line charts: one group per series, gaps where a value is missing, valid XML, text
escaped, nothing fetched."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest

from pipelines.charts import line_chart, markdown_image

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
