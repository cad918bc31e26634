"""Small inline SVG charts for `cairn report`: a line chart of several series over time and a bar chart.

No JavaScript and nothing fetched: each function returns one self-contained `<svg>` element whose
text is escaped, so a report opens anywhere (and offline) as it was written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

__all__ = ["PALETTE", "bar_chart", "line_chart", "nice_ticks"]

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11"'
Point = tuple[datetime, float | None]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (at least two)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks if len(ticks) >= 2 else [start, start + step]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _time_label(when: datetime, span_s: float) -> str:
    when = when.astimezone(UTC)
    if span_s <= 2 * 86400:
        return when.strftime("%H:%M")
    return when.strftime("%m-%d %H:%M")


def _frame(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" {_FONT}>',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="14" font-size="12" font-weight="600" fill="#111827">{escape(title)}</text>',
    ]


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    y_label: str = "",
    width: int = 760,
    height: int = 280,
    y_min: float | None = 0.0,
) -> str:
    """Several series over time as lines with point markers; gaps (None) break a line."""
    left, right, top, bottom = 64, 150, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [(t, v) for values in series.values() for t, v in values if v is not None]
    times = [t.timestamp() for values in series.values() for t, _ in values]
    out = _frame(width, height, title)
    if not points or not times:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#6b7280">no data</text>'
        )
        return "\n".join([*out, "</svg>"])
    t0, t1 = min(times), max(times)
    if t1 <= t0:
        t0, t1 = t0 - 1800, t1 + 1800
    ys = [v for _, v in points]
    low = min(ys) if y_min is None else min(y_min, min(ys))
    ticks = nice_ticks(low, max(ys))
    y0, y1 = ticks[0], ticks[-1]

    def x_of(ts: float) -> float:
        return left + (ts - t0) / (t1 - t0) * plot_w

    def y_of(v: float) -> float:
        return top + plot_h - (v - y0) / (y1 - y0) * plot_h

    for tick in ticks:
        y = y_of(tick)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#374151">{_fmt(tick)}</text>'
        )
    for i in range(6):
        ts = t0 + (t1 - t0) * i / 5
        x = x_of(ts)
        label = _time_label(datetime.fromtimestamp(ts, UTC), t1 - t0)
        out.append(
            f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#9ca3af"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#374151">{label}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#9ca3af"/>'
    )
    if y_label:
        out.append(
            f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" fill="#374151" '
            f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
        )
    for index, (name, values) in enumerate(series.items()):
        color = PALETTE[index % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for t, v in sorted(values, key=lambda p: p[0]):
            if v is None:
                segment = []
                segments.append(segment)
                continue
            x, y = x_of(t.timestamp()), y_of(v)
            segment.append(f"{x:.1f},{y:.1f}")
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>'
                f"{escape(name)} {t.astimezone(UTC):%Y-%m-%d %H:%M}Z: {_fmt(v)}</title></circle>"
            )
        for seg in segments:
            if len(seg) > 1:
                out.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(seg)}"/>'
                )
        ly = top + 12 + index * 18
        out.append(f'<rect x="{left + plot_w + 14}" y="{ly - 9}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{left + plot_w + 32}" y="{ly + 1}" fill="#111827">{escape(name[:22])}</text>')
    return "\n".join([*out, "</svg>"])


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    y_label: str = "",
    width: int = 760,
    height: int = 260,
    colors: Mapping[str, str] | None = None,
    color: str | None = None,
) -> str:
    """One bar per label, its value written above it; `color` for all bars, else `colors` by label,
    else the palette in turn."""
    left, right, top, bottom = 64, 16, 36, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    out = _frame(width, height, title)
    if not bars:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#6b7280">no data</text>'
        )
        return "\n".join([*out, "</svg>"])
    ticks = nice_ticks(0.0, max(v for _, v in bars) or 1.0)
    top_value = ticks[-1]
    for tick in ticks:
        y = top + plot_h - tick / top_value * plot_h
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#374151">{_fmt(tick)}</text>'
        )
    if y_label:
        out.append(
            f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" fill="#374151" '
            f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
        )
    slot = plot_w / len(bars)
    bar_w = max(4.0, min(64.0, slot * 0.7))
    for index, (label, value) in enumerate(bars):
        fill = color or (colors or {}).get(label, PALETTE[index % len(PALETTE)])
        h = value / top_value * plot_h
        x = left + slot * index + (slot - bar_w) / 2
        y = top + plot_h - h
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{fill}">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
        )
        out.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" fill="#111827">{_fmt(value)}</text>'
        )
        out.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#374151">'
            f"{escape(label[:18])}</text>"
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#9ca3af"/>'
    )
    return "\n".join([*out, "</svg>"])
