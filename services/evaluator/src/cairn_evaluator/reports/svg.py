"""A grouped bar chart (candidate vs baseline per suite/metric) as inline SVG, written by hand."""

from __future__ import annotations

from html import escape

from cairn_events import SuiteScore

CANDIDATE_COLOUR = "#2f6fdf"
BASELINE_COLOUR = "#9aa5b1"


def bar_chart(scores: list[SuiteScore], *, width: int = 720, bar_height: int = 14) -> str:
    """Horizontal bars on a 0..1 scale (scores above 1 are clipped), one group per suite/metric;
    a failed gate's label is red."""
    label_w, pad, gap = 220, 8, 10
    group_h = 2 * bar_height + gap
    height = pad * 2 + 24 + max(1, len(scores)) * group_h
    plot_w = width - label_w - 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="candidate vs baseline per suite and metric">',
        f'<rect x="{label_w}" y="{pad}" width="12" height="10" fill="{CANDIDATE_COLOUR}"/>'
        f'<text x="{label_w + 16}" y="{pad + 9}" font-size="11">candidate</text>'
        f'<rect x="{label_w + 90}" y="{pad}" width="12" height="10" fill="{BASELINE_COLOUR}"/>'
        f'<text x="{label_w + 106}" y="{pad + 9}" font-size="11">baseline</text>',
    ]
    for tick in (0.0, 0.5, 1.0):
        x = label_w + tick * plot_w
        out.append(
            f'<line x1="{x:.1f}" y1="{pad + 20}" x2="{x:.1f}" y2="{height - pad}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{height - 1}" font-size="9" text-anchor="middle">{tick:g}</text>'
        )
    for i, score in enumerate(scores):
        y = pad + 24 + i * group_h
        colour = "#222" if score.passed else "#c62828"
        label = escape(f"{score.suite} / {score.metric}")
        out.append(
            f'<text x="{label_w - 6}" y="{y + bar_height + 2}" font-size="11" text-anchor="end" '
            f'fill="{colour}">{label}</text>'
        )
        for j, (value, fill) in enumerate(
            ((score.candidate, CANDIDATE_COLOUR), (score.baseline, BASELINE_COLOUR))
        ):
            if value is None:
                continue
            w = max(0.0, min(1.0, value)) * plot_w
            by = y + j * bar_height
            out.append(
                f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="{bar_height - 2}" fill="{fill}"/>'
                f'<text x="{label_w + w + 4:.1f}" y="{by + bar_height - 4}" font-size="10">{value:.3f}</text>'
            )
    out.append("</svg>")
    return "".join(out)
