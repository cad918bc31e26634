"""Charts for the console, rendered on the server as inline SVG: stacked bars and lines over a row of
labelled buckets (hours or days). No JavaScript and no styles: colours are SVG attributes, so the
console's content security policy holds. Every label and name is escaped; each bar segment and point
carries `data-series`, `data-label` and `data-value`, and a `<title>` a browser shows on hover.

Pure: numbers in, markup out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

__all__ = ["PALETTE", "Series", "bar_chart", "fmt_value", "line_chart", "nice_ticks"]

PALETTE = ("#2454c5", "#1a7f37", "#9a6700", "#c62828", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 150, 28, 36
_MAX_X_LABELS = 12


@dataclass(frozen=True)
class Series:
    """One named row of values, one per bucket (None: no value there); `colour` overrides the palette."""

    name: str
    values: Sequence[float | None]
    colour: str | None = None


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 up to at least `high` (1-2-2.5-5 steps)."""
    if not math.isfinite(high) or high <= 0:
        high = 1.0
    raw = high / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def fmt_value(value: float) -> str:
    """A short human form of a value for ticks and hover titles."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _colour(series: Series, index: int) -> str:
    return escape(series.colour or PALETTE[index % len(PALETTE)])


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)} labels")


def _frame(chart_id: str, title: str, width: int, height: int) -> list[str]:
    cid, name = escape(chart_id), escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{cid}" class="timechart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{cid}-title">',
        f'<title id="{cid}-title">{name}</title>',
        f'<text x="8" y="16" font-size="12" font-weight="600" fill="#1d2330">{name}</text>',
    ]


def _empty(out: list[str], width: int, height: int) -> Markup:
    out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#5b6474">no data</text>')
    out.append("</svg>")
    return Markup("\n".join(out))


def _axes(
    out: list[str], labels: Sequence[str], ticks: list[float], unit: str, width: int, height: int
) -> tuple[float, float]:
    """Grid lines, y tick values and thinned x labels; returns (plot width, plot height)."""
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    top_value = ticks[-1]
    for tick in ticks:
        y = _TOP + plot_h - tick / top_value * plot_h
        out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#5b6474">'
            f"{escape(fmt_value(tick))}</text>"
        )
    if unit:
        mid = _TOP + plot_h / 2
        out.append(
            f'<text x="14" y="{mid:.1f}" text-anchor="middle" font-size="10" fill="#5b6474" '
            f'transform="rotate(-90 14 {mid:.1f})">{escape(unit)}</text>'
        )
    slot = plot_w / len(labels)
    every = max(1, math.ceil(len(labels) / _MAX_X_LABELS))
    for index, label in enumerate(labels):
        if index % every:
            continue
        x = _LEFT + slot * (index + 0.5)
        out.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 14}" text-anchor="middle" font-size="10" fill="#5b6474">'
            f"{escape(label)}</text>"
        )
    out.append(
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" stroke="#9ca3af"/>'
    )
    return plot_w, plot_h


def _legend(out: list[str], series: Sequence[Series], width: int) -> None:
    x = width - _RIGHT + 12
    for index, s in enumerate(series):
        y = _TOP + 10 + index * 18
        out.append(f'<rect x="{x}" y="{y - 9}" width="11" height="11" fill="{_colour(s, index)}"/>')
        out.append(f'<text x="{x + 16}" y="{y}" font-size="11" fill="#1d2330">{escape(s.name[:22])}</text>')


def _hover(series: Series, label: str, value: float, unit: str) -> str:
    suffix = f" {unit}" if unit else ""
    return escape(f"{series.name}, {label}: {fmt_value(value)}{suffix}")


def _data(series: Series, label: str, value: float) -> str:
    return f'data-series="{escape(series.name)}" data-label="{escape(label)}" data-value="{value:g}"'


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    width: int = 1000,
    height: int = 260,
) -> Markup:
    """One bar per label, the series stacked in order (bottom first); None and 0 draw nothing."""
    _check(labels, series)
    out = _frame(chart_id, title, width, height)
    totals = [sum(s.values[i] or 0.0 for s in series) for i in range(len(labels))]
    if not labels or not any(totals):
        return _empty(out, width, height)
    ticks = nice_ticks(max(totals))
    plot_w, plot_h = _axes(out, labels, ticks, unit, width, height)
    slot = plot_w / len(labels)
    bar_w = max(2.0, min(48.0, slot * 0.75))
    scale = plot_h / ticks[-1]
    for i, label in enumerate(labels):
        x = _LEFT + slot * i + (slot - bar_w) / 2
        base = _TOP + plot_h
        for index, s in enumerate(series):
            value = s.values[i] or 0.0
            if value <= 0:
                continue
            h = value * scale
            base -= h
            out.append(
                f'<rect class="segment" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_colour(s, index)}" {_data(s, label, value)}><title>{_hover(s, label, value, unit)}'
                "</title></rect>"
            )
    _legend(out, series, width)
    out.append("</svg>")
    return Markup("\n".join(out))


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    y_max: float | None = None,
    width: int = 1000,
    height: int = 260,
) -> Markup:
    """One line per series with a marker at each value; a None breaks the line. `y_max` fixes the
    top of the scale (e.g. 100 for a percentage)."""
    _check(labels, series)
    out = _frame(chart_id, title, width, height)
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values:
        return _empty(out, width, height)
    ticks = nice_ticks(y_max if y_max is not None else max(values))
    plot_w, plot_h = _axes(out, labels, ticks, unit, width, height)
    slot = plot_w / len(labels)
    top_value = ticks[-1]
    for index, s in enumerate(series):
        colour = _colour(s, index)
        runs: list[list[str]] = [[]]
        for i, label in enumerate(labels):
            value = s.values[i]
            if value is None:
                runs.append([])
                continue
            x = _LEFT + slot * (i + 0.5)
            y = _TOP + plot_h - min(value, top_value) / top_value * plot_h
            runs[-1].append(f"{x:.1f},{y:.1f}")
            out.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" {_data(s, label, value)}>'
                f"<title>{_hover(s, label, value, unit)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                out.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>'
                )
    _legend(out, series, width)
    out.append("</svg>")
    return Markup("\n".join(out))
