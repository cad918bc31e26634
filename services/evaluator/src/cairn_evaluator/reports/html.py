"""The self-contained HTML report of a run: verdict, chart, score table with gates, every case."""

from __future__ import annotations

from html import escape

from cairn_evaluator.domain.facets import FacetScore
from cairn_evaluator.domain.runs import Answer, Run
from cairn_evaluator.domain.scoring import COMPLETENESS, RunScores
from cairn_evaluator.domain.suites import Gate
from cairn_evaluator.reports.svg import bar_chart
from cairn_events import SuiteScore

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left;font-size:13px}
.pass{color:#1b7f3b;font-weight:600}.fail{color:#c62828;font-weight:600}pre{white-space:pre-wrap;margin:0}
"""


def fmt(value: float | None) -> str:
    """A score with three decimals; `-` for none."""
    return "-" if value is None else f"{value:.3f}"


def delta(candidate: float, baseline: float | None) -> str:
    """Candidate minus baseline, signed; `-` without a baseline."""
    return "-" if baseline is None else f"{candidate - baseline:+.3f}"


def _answer(answer: Answer | None) -> str:
    if answer is None:
        return "<em>no answer</em>"
    body = escape(answer.text or answer.reason or "")
    return f"<b>{escape(answer.status.value)}</b><pre>{body}</pre>"


def _metrics(values: dict[str, float] | None) -> str:
    return "" if values is None else escape(", ".join(f"{k} {v:.2f}" for k, v in values.items()))


def gate_text(run: Run, score: SuiteScore) -> str | None:
    """The gate a score is held to, in words: the suite's gate, or its slice rule for a per-slice score
    (`refusal_rate[persona]`); none for scores outside the run's suites (shadow evidence)."""
    if score.suite == COMPLETENESS:
        return "every request answered"
    suite = next((s for s in run.suites if s.name == score.suite), None)
    if suite is None:
        return None
    if score.metric.endswith("]") and "[" in score.metric:
        return "slice: " + suite.gate.explain_slice()
    if score.metric.endswith("}") and "{" in score.metric:
        return "facet: " + facet_rule(suite.gate)
    return suite.gate.explain()


def facet_rule(gate: Gate) -> str:
    """The rule each facet slice is held to, in words."""
    if gate.max_facet_regression is None:
        return "reported, not gated"
    return (
        f"drop vs baseline <= {gate.max_facet_regression:g} "
        f"(slices of >= {gate.min_facet_cases} cases on both sides)"
    )


def facet_status(score: FacetScore) -> str:
    """`pass`, `fail`, or `-` (not gated)."""
    return "-" if score.passed is None else ("pass" if score.passed else "fail")


def facet_cases(score: FacetScore) -> str:
    """The slice's case count, `candidate/baseline` when there is a baseline."""
    return str(score.cases) if score.baseline is None else f"{score.cases}/{score.baseline_cases}"


def _facet_rows(facets: list[FacetScore]) -> str:
    out = []
    for f in facets:
        css = {"pass": ' class="pass"', "fail": ' class="fail"'}.get(facet_status(f), "")
        out.append(
            f"<tr><td>{escape(f.suite)}</td><td>{escape(f.metric)}</td><td>{escape(f.facet)}</td>"
            f"<td>{escape(f.value)}</td><td>{facet_cases(f)}</td><td>{fmt(f.candidate)}</td><td>{fmt(f.baseline)}</td>"
            f"<td>{delta(f.candidate, f.baseline)}</td><td><span{css}>{facet_status(f)}</span> "
            f"{escape(f.note)}</td></tr>"
        )
    return "".join(out)


def render_html(run: Run, scores: RunScores, verdict: str) -> str:
    """The report as one HTML document (no external files, scripts or styles); per-slice scores
    (`metric[slice]`) follow their suite's overall score, the facet table shows each suite's gated
    metric per tenant, prompt, topic and length slice (candidate vs baseline), and every case shows
    its slice and facets."""
    verdict_class = "pass" if scores.passed else "fail"
    rows = []
    for s in scores.scores:
        note = scores.notes.get((s.suite, s.metric), "")
        status = '<span class="pass">pass</span>' if s.passed else '<span class="fail">fail</span>'
        rows.append(
            f"<tr><td>{escape(s.suite)}</td><td>{escape(s.metric)}</td><td>{fmt(s.candidate)}</td>"
            f"<td>{fmt(s.baseline)}</td><td>{delta(s.candidate, s.baseline)}</td>"
            f"<td>{escape(gate_text(run, s) or 'shadow traffic: candidate (shadow) vs live')}</td>"
            f"<td>{status} {escape(note)}</td></tr>"
        )
    cases = [
        f"<tr><td>{escape(c.suite)}</td><td>{escape(c.case_id)}</td><td>{escape(c.slice or '-')}</td>"
        f"<td>{escape(', '.join(f'{k}={v}' for k, v in c.facets.items()))}</td>"
        f"<td>{_answer(c.candidate)}"
        f"<br><small>{_metrics(c.candidate_metrics)}</small></td>"
        f"<td>{_answer(c.baseline) if c.baseline_metrics is not None else '-'}"
        f"<br><small>{_metrics(c.baseline_metrics)}</small></td></tr>"
        for c in scores.cases
    ]
    gate_items = "".join(
        f"<li><b>{escape(s.name)}</b> ({escape(s.kind)}): {escape(s.gate.explain())}. {escape(s.description)}</li>"
        for s in run.suites
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>Evaluation {escape(run.run_id)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Evaluation run {escape(run.run_id)}</h1>"
        f"<p>Candidate <b>{escape(run.candidate_ref)}</b> vs baseline <b>{escape(run.baseline_ref or 'none')}</b>; "
        f"started {run.started_at.isoformat()}; status {escape(run.status)}</p>"
        f'<p class="{verdict_class}">{escape(verdict)}</p>'
        f"{bar_chart(scores.scores)}"
        "<h2>Scores</h2><table><tr><th>suite</th><th>metric</th><th>candidate</th><th>baseline</th>"
        f"<th>delta</th><th>gate</th><th>result</th></tr>{''.join(rows)}</table>"
        f"<h2>Gates</h2><ul>{gate_items}<li><b>completeness</b>: every request must be answered "
        "before the run timeout.</li></ul>"
        "<h2>Facets</h2><table><tr><th>suite</th><th>metric</th><th>facet</th><th>slice</th><th>cases</th>"
        "<th>candidate</th><th>baseline</th><th>delta</th><th>gate</th></tr>"
        f"{_facet_rows(scores.facets)}</table>"
        "<h2>Cases</h2><table><tr><th>suite</th><th>case</th><th>slice</th><th>facets</th><th>candidate</th>"
        "<th>baseline</th></tr>"
        f"{''.join(cases)}</table></body></html>"
    )
