"""Facets: every evaluation case attributed to a slice of each of four dimensions, and each suite's
gated metric scored per slice, so a drop hidden by the overall mean shows (and can fail the gate).

The dimensions: `tenant` (the tenant the case comes from: a held-out row's tenant, a suite case's
`tenant`, else the tenant the evaluator asks as), `prompt` (`name:version` as the candidate's answer
resolved it; the baseline's when the candidate has none; else the reference asked), `topic` (the
case's `topic`, else its `topic` variable; `none` without one) and `length` (the request's characters:
variable values plus chat turns, bucketed by `SHORT_MAX_CHARS` and `LONG_MIN_CHARS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn_evaluator.domain.runs import Answer
from cairn_evaluator.domain.suites import EvalCase, Gate

__all__ = [
    "FACETS",
    "LONG_MIN_CHARS",
    "NO_VALUE",
    "SHORT_MAX_CHARS",
    "FacetScore",
    "case_facets",
    "facet_label",
    "judge_facet",
    "length_bucket",
    "request_chars",
]

FACETS = ("tenant", "prompt", "topic", "length")
NO_VALUE = "none"
SHORT_MAX_CHARS = 200
"""A request of fewer characters than this is `short`."""
LONG_MIN_CHARS = 1000
"""A request of at least this many characters is `long`; between the two, `medium`."""
_EPS = 1e-9


def request_chars(case: EvalCase) -> int:
    """The request's length in characters: its variables' values plus its chat turns."""
    return sum(len(str(v)) for v in case.variables.values() if v is not None) + sum(
        len(m.content) for m in case.messages
    )


def length_bucket(chars: int) -> str:
    """`short` (< SHORT_MAX_CHARS), `medium`, or `long` (>= LONG_MIN_CHARS)."""
    if chars < SHORT_MAX_CHARS:
        return "short"
    return "long" if chars >= LONG_MIN_CHARS else "medium"


def _answered_prompt(*answers: Answer | None) -> str | None:
    return next((a.prompt for a in answers if a is not None and a.prompt), None)


def case_facets(case: EvalCase, candidate: Answer | None, baseline: Answer | None = None) -> dict[str, str]:
    """The slice of each facet a case belongs to (`none` where it names nothing)."""
    topic = case.topic
    if topic is None:
        variable = case.variables.get("topic")
        topic = variable if isinstance(variable, str) and variable.strip() else None
    return {
        "tenant": case.tenant or NO_VALUE,
        "prompt": _answered_prompt(candidate, baseline) or case.prompt,
        "topic": topic or NO_VALUE,
        "length": length_bucket(request_chars(case)),
    }


def facet_label(metric: str, facet: str, value: str) -> str:
    """The name a metric has on one facet slice: `token_f1{topic=generators}`."""
    return f"{metric}{{{facet}={value}}}"


@dataclass(frozen=True)
class FacetScore:
    """A suite's gated metric on one facet slice: both sides' means and case counts, and the gate's
    word on it (`passed` None: reported, not gated)."""

    suite: str
    metric: str
    facet: str
    value: str
    candidate: float
    baseline: float | None
    cases: int
    baseline_cases: int
    passed: bool | None
    note: str

    @property
    def label(self) -> str:
        """`metric{facet=value}`."""
        return facet_label(self.metric, self.facet, self.value)


def judge_facet(
    gate: Gate, candidate: float, baseline: float | None, cases: int, baseline_cases: int
) -> tuple[bool | None, str]:
    """Whether one facet slice passes the gate's `max_facet_regression` (None: the rule does not
    apply — no rule, no baseline, or fewer than `min_facet_cases` cases on a side), and why."""
    if gate.max_facet_regression is None:
        return None, "reported, not gated"
    if baseline is None:
        return None, "no baseline"
    if min(cases, baseline_cases) < gate.min_facet_cases:
        return None, f"too few cases to gate ({cases} vs {baseline_cases}; needs {gate.min_facet_cases})"
    scores = f"candidate {candidate:.3f} vs baseline {baseline:.3f} on {cases}/{baseline_cases} cases"
    if candidate < baseline - gate.max_facet_regression - _EPS:
        return False, f"{scores}: dropped {baseline - candidate:.3f} (allowed {gate.max_facet_regression:g})"
    return True, f"{scores}: drop within {gate.max_facet_regression:g}"
