"""The console's server-rendered SVG charts: stacked bars, lines with gaps, escaping, empty charts."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from cairn_gateway.console.charts import Series, bar_chart, fmt_value, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(markup)  # well-formed XML, or this raises


def test_bars_stack_in_order_with_heights_in_proportion() -> None:
    svg = parse(
        bar_chart("chart-x", "Requests", ["00:00", "01:00"], [Series("ok", [3, 1]), Series("bad", [1, None])])
    )
    assert svg.get("id") == "chart-x"
    bars = {
        (r.get("data-series"), r.get("data-label")): r for r in svg.iter(f"{SVG}rect") if r.get("data-series")
    }
    assert set(bars) == {("ok", "00:00"), ("bad", "00:00"), ("ok", "01:00")}  # None draws nothing
    height = {k: float(r.get("height", "0")) for k, r in bars.items()}
    assert height[("ok", "00:00")] == pytest.approx(3 * height[("ok", "01:00")], rel=0.01)
    assert height[("bad", "00:00")] == pytest.approx(height[("ok", "01:00")], rel=0.01)
    ok, bad = bars[("ok", "00:00")], bars[("bad", "00:00")]
    assert float(bad.get("y", "0")) + height[("bad", "00:00")] == pytest.approx(
        float(ok.get("y", "0")), abs=0.1
    )
    assert bars[("ok", "00:00")].findtext(f"{SVG}title") == "ok, 00:00: 3"


def test_labels_names_and_titles_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    markup = bar_chart('c"1', evil, [evil], [Series(evil, [1.0])], unit="<u>")
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
    svg = parse(markup)
    assert svg.get("id") == 'c"1'
    assert svg.findtext(f"{SVG}title") == evil  # the text, once unescaped by a parser
    line = line_chart("c2", "t", [evil], [Series(evil, [2.0])])
    assert "<script>" not in line
    parse(line)


def test_a_line_breaks_at_missing_values_and_y_max_fixes_the_scale() -> None:
    svg = parse(
        line_chart(
            "q", "Quality", ["a", "b", "c", "d", "e"], [Series("s", [50, 60, None, 80, 90])], y_max=100
        )
    )
    lines = list(svg.iter(f"{SVG}polyline"))
    assert [len(p.get("points", "").split()) for p in lines] == [2, 2]
    points = [c.get("data-label") for c in svg.iter(f"{SVG}circle")]
    assert points == ["a", "b", "d", "e"]
    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert ticks[-1] == "100"


def test_an_empty_chart_says_no_data() -> None:
    for markup in (
        bar_chart("e", "Empty", ["a"], [Series("s", [0])]),
        bar_chart("e", "Empty", [], []),
        line_chart("e", "Empty", ["a"], [Series("s", [None])]),
    ):
        assert re.search(r">no data</text>", markup)
        parse(markup)


def test_a_series_must_have_a_value_per_label() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        bar_chart("x", "x", ["a", "b", "c"], [Series("s", [1, 2])])


def test_many_labels_are_thinned_on_the_axis() -> None:
    labels = [f"{h:02d}:00" for h in range(24)]
    svg = parse(bar_chart("x", "x", labels, [Series("s", [1.0] * 24)]))
    axis = [t.text for t in svg.iter(f"{SVG}text") if t.text in labels]
    assert 2 <= len(axis) <= 12
    assert axis[0] == "00:00"


def test_ticks_and_values() -> None:
    assert nice_ticks(7) == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert nice_ticks(100) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert nice_ticks(0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [fmt_value(v) for v in (0, 0.0024, 1.5, 12.0, 12.5, 25000)] == [
        "0",
        "0.0024",
        "1.5",
        "12",
        "12.5",
        "25,000",
    ]
