"""The replay diff rendered three ways: a terminal table, JSON and a self-contained HTML page.

The HTML has inline CSS and no external asset (no script, font or image), and every text from the
trail (questions, answers, chunks, reasons) is escaped.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from html import escape
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cairn_cli.replay_diff import Chunk, DiffRow, ReplayDiff, TrailSummary

__all__ = ["diff_json", "render_html", "render_table"]


def _summary(s: TrailSummary) -> dict[str, Any]:
    out = asdict(s)
    out["chunks"] = [c.chunk_id for c in s.chunks]
    return out


def _chunks(chunks: list[Chunk]) -> list[dict[str, Any]]:
    return [
        {"chunk_id": c.chunk_id, "source_uri": c.source_uri, "score": c.score, "text": c.text} for c in chunks
    ]


def row_json(row: DiffRow) -> dict[str, Any]:
    """One row as plain JSON types."""
    return {
        "original_request_id": row.original_request_id,
        "shadow_request_id": row.shadow_request_id,
        "tenant": row.tenant,
        "question": row.question,
        "changed": row.changed,
        "old": _summary(row.old),
        "new": _summary(row.new),
        "chunks_added": _chunks(row.chunks_added),
        "chunks_removed": _chunks(row.chunks_removed),
        "reference": row.reference,
        "score_kind": row.score_kind,
        "old_score": row.old_score,
        "new_score": row.new_score,
    }


def diff_json(diff: ReplayDiff) -> dict[str, Any]:
    """The whole diff as plain JSON types (`--format json`)."""
    return {
        "replay_id": diff.replay_id,
        "from": diff.start.isoformat(),
        "to": diff.end.isoformat(),
        "overrides": diff.overrides.describe(),
        "aggregates": diff.aggregates(),
        "missing": diff.missing,
        "rows": [row_json(r) for r in diff.rows],
    }


def _fmt(value: float | int | None, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def _answer(s: TrailSummary) -> str:
    if s.status == "completed":
        return s.text or ""
    return f"[{s.status}] {s.reason or ''}".strip()


def _delta(old: float | int | None, new: float | int | None, spec: str) -> str:
    if old is None and new is None:
        return "-"
    return f"{_fmt(old, spec)} → {_fmt(new, spec)}"


def render_table(diff: ReplayDiff, console: Console) -> None:
    """The diff as a rich table, then the aggregates and what did not come back."""
    table = Table(title=f"replay {diff.replay_id}", show_lines=True, expand=True)
    for name in ("request", "old answer", "new answer", "context", "verdicts", "tokens / cost / ms", "score"):
        table.add_column(name, overflow="fold")
    for row in diff.rows:
        context = Text()
        for c in row.chunks_added:
            context.append(f"+ {c.chunk_id}\n", style="green")
        for c in row.chunks_removed:
            context.append(f"- {c.chunk_id}\n", style="red")
        if not row.chunks_added and not row.chunks_removed:
            context.append(f"same ({len(row.new.chunks)})")
        verdicts = (
            f"in {row.old.input_verdict or '-'} → {row.new.input_verdict or '-'}\n"
            f"out {row.old.output_verdict or '-'} → {row.new.output_verdict or '-'}"
        )
        usage = (
            f"in {_delta(row.old.input_tokens, row.new.input_tokens, 'd')}\n"
            f"out {_delta(row.old.output_tokens, row.new.output_tokens, 'd')}\n"
            f"$ {_delta(row.old.cost_usd, row.new.cost_usd, '.6f')}\n"
            f"ms {_delta(row.old.latency_ms, row.new.latency_ms, '.0f')}"
        )
        score = f"{row.score_kind or '-'}\n{_delta(row.old_score, row.new_score, '.3f')}"
        table.add_row(
            Text(f"{row.original_request_id}\n{row.question}"),
            Text(f"{row.old.prompt or '-'} {row.old.model or ''}\n{_answer(row.old)}"),
            Text(
                f"{row.new.prompt or '-'} {row.new.model or ''}\n{_answer(row.new)}",
                style="bold" if row.changed else "",
            ),
            context,
            verdicts,
            usage,
            score,
        )
    agg = diff.aggregates()
    lines = [
        f"{agg['answered']}/{agg['requests']} answered, {agg['changed_answers']} changed answer(s), "
        f"{agg['status_changes']} status change(s), chunks +{agg['chunks_added']} -{agg['chunks_removed']}",
        f"token F1 vs corrections ({agg['f1_rows']} rows): {_delta(agg['f1_old'], agg['f1_new'], '.3f')}",
        f"groundedness ({agg['groundedness_rows']} rows): "
        f"{_delta(agg['groundedness_old'], agg['groundedness_new'], '.3f')}",
        f"tokens in {_delta(agg['input_tokens_old'], agg['input_tokens_new'], '.0f')}, "
        f"out {_delta(agg['output_tokens_old'], agg['output_tokens_new'], '.0f')}; "
        f"cost $ {_delta(agg['cost_usd_old'], agg['cost_usd_new'], '.6f')}; "
        f"mean latency ms {_delta(agg['latency_ms_old'], agg['latency_ms_new'], '.0f')}",
    ]
    if diff.missing:
        lines.append(f"no shadow answer in time for: {', '.join(diff.missing)}")
    console.print(Group(table, Text("\n".join(lines))))


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d8dde6;padding:6px 8px;vertical-align:top;text-align:left}
th{background:#eef1f6}.changed{background:#fff8e6}.add{color:#17703a}.rem{color:#b3261e}
.muted{color:#6b7280;font-size:12px}.ans{white-space:pre-wrap;max-width:34em}
dl.agg{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{font-weight:600}
"""


def _cell(s: TrailSummary) -> str:
    head = escape(f"{s.status or '-'} · {s.prompt or '-'} · {s.model or '-'}")
    return f'<div class="muted">{head}</div><div class="ans">{escape(_answer(s))}</div>'


def _chunk_list(row: DiffRow) -> str:
    items = [
        f'<li class="add" title="{escape(c.text)}">+ {escape(c.chunk_id)} <span class="muted">'
        f"{escape(c.source_uri)}</span></li>"
        for c in row.chunks_added
    ] + [
        f'<li class="rem" title="{escape(c.text)}">- {escape(c.chunk_id)} <span class="muted">'
        f"{escape(c.source_uri)}</span></li>"
        for c in row.chunks_removed
    ]
    if not items:
        return f'<span class="muted">same ({len(row.new.chunks)})</span>'
    return "<ul>" + "".join(items) + "</ul>"


def render_html(diff: ReplayDiff) -> str:
    """A self-contained HTML page of the diff (inline CSS, every text escaped)."""
    agg = diff.aggregates()
    overrides = ", ".join(f"{k}={v}" for k, v in diff.overrides.describe().items()) or "none"
    agg_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(_fmt(v, 'g'))}</dd>" for k, v in agg.items())
    rows = []
    for row in diff.rows:
        rows.append(
            f'<tr class="{"changed" if row.changed else ""}">'
            f"<td>{escape(row.original_request_id)}<div class='muted'>{escape(row.shadow_request_id)}</div>"
            f"<div>{escape(row.question)}</div></td>"
            f"<td>{_cell(row.old)}</td><td>{_cell(row.new)}</td><td>{_chunk_list(row)}</td>"
            f"<td>in {escape(row.old.input_verdict or '-')} → {escape(row.new.input_verdict or '-')}<br>"
            f"out {escape(row.old.output_verdict or '-')} → {escape(row.new.output_verdict or '-')}</td>"
            f"<td>in {_delta(row.old.input_tokens, row.new.input_tokens, 'd')}<br>"
            f"out {_delta(row.old.output_tokens, row.new.output_tokens, 'd')}<br>"
            f"$ {_delta(row.old.cost_usd, row.new.cost_usd, '.6f')}<br>"
            f"ms {_delta(row.old.latency_ms, row.new.latency_ms, '.0f')}</td>"
            f"<td>{escape(row.score_kind or '-')}<br>{_delta(row.old_score, row.new_score, '.3f')}</td></tr>"
        )
    missing = (
        f"<p>No shadow answer in time for: {escape(', '.join(diff.missing))}</p>" if diff.missing else ""
    )
    title = escape(f"Replay {diff.replay_id}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>"
        f"<p>Window {escape(diff.start.isoformat())} to {escape(diff.end.isoformat())}; "
        f"overrides: {escape(overrides)}.</p><dl class='agg'>{agg_html}</dl>{missing}"
        "<table><thead><tr><th>request</th><th>old answer</th><th>new answer</th><th>context</th>"
        "<th>verdicts</th><th>tokens / cost / latency</th><th>score</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )


def dumps(diff: ReplayDiff) -> str:
    """`diff_json` as indented text."""
    return json.dumps(diff_json(diff), indent=2, ensure_ascii=False)
