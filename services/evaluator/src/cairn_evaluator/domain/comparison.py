"""Comparing model versions on the same suites (`cairn eval compare`): each version's scores, and
for distillation the students' agreement with their teacher.

Each version answered the same cases in its own `compare` run (the cases are numbered the same in
every run, since they come from the same suites in the same order), so case `i` of one run is
case `i` of every other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn_evaluator.domain.metrics import token_f1
from cairn_evaluator.domain.runs import Run, RunCase
from cairn_evaluator.domain.scoring import COMPLETENESS, score_run
from cairn_events import ResponseStatus

__all__ = ["Comparison", "VersionResult", "agreement", "compare_runs", "primary_metric"]


def primary_metric(kind: str) -> str:
    """The metric a suite of `kind` is read by: token F1 (held-out), refusal rate (adversarial),
    pass rate (scenario)."""
    return {"heldout": "token_f1", "adversarial": "refusal_rate"}.get(kind, "pass_rate")


@dataclass(frozen=True)
class VersionResult:
    """One version's side of a comparison."""

    ref: str
    run_id: str
    status: str
    scores: dict[str, dict[str, float]]
    """Suite → metric → score (slices left out; `completeness` → `answered`)."""
    agreement: float | None = None
    """Mean token F1 of its held-out answers against the teacher's; None for the teacher or without one."""
    agreement_cases: int = 0


@dataclass(frozen=True)
class Comparison:
    """Every version's scores on the same suites, in the order asked."""

    suites: list[tuple[str, str]]
    """(suite, primary metric) in the runs' order."""
    versions: list[VersionResult]
    teacher: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """The comparison as plain JSON values."""
        return {
            "teacher": self.teacher,
            "suites": [{"suite": s, "metric": m} for s, m in self.suites],
            "versions": [
                {
                    "ref": v.ref,
                    "run_id": v.run_id,
                    "status": v.status,
                    "scores": v.scores,
                    "agreement_with_teacher": v.agreement,
                    "agreement_cases": v.agreement_cases,
                }
                for v in self.versions
            ],
            "notes": self.notes,
        }


def _heldout_answers(run: Run, cases: list[RunCase]) -> dict[int, str | None]:
    """Case index → completed answer text (None when not completed) of the run's held-out cases."""
    heldout = {s.name for s in run.suites if s.kind == "heldout"}
    return {
        c.index: (c.answer.text or "")
        if c.answer is not None and c.answer.status is ResponseStatus.COMPLETED
        else None
        for c in cases
        if c.side == "c" and c.suite in heldout
    }


def agreement(
    student: tuple[Run, list[RunCase]], teacher: tuple[Run, list[RunCase]]
) -> tuple[float | None, int]:
    """Mean token F1 of the student's held-out answers against the teacher's on the same cases, and
    how many cases counted: those the teacher completed (a student answer missing there scores 0).
    None when no such case exists."""
    mine = _heldout_answers(*student)
    theirs = _heldout_answers(*teacher)
    scores = [token_f1(mine.get(i) or "", ref) for i, ref in sorted(theirs.items()) if ref is not None]
    return (sum(scores) / len(scores) if scores else None), len(scores)


def compare_runs(runs: list[tuple[Run, list[RunCase]]], teacher: str | None = None) -> Comparison:
    """Score each version's run as `score_run` does and, with `teacher` (one of the runs' refs), add
    every other version's agreement with it."""
    by_ref = {run.candidate_ref: (run, cases) for run, cases in runs}
    taught = by_ref.get(teacher) if teacher is not None else None
    notes = [] if teacher is None or taught is not None else [f"teacher {teacher} has no run here"]
    versions = []
    for run, cases in runs:
        scores: dict[str, dict[str, float]] = {}
        for s in score_run(run, cases).scores:
            if "[" not in s.metric and "{" not in s.metric:  # slices and facets stay in the run's own report
                scores.setdefault(s.suite, {})[s.metric] = s.candidate
        agreed, counted = (None, 0)
        if taught is not None and run.candidate_ref != teacher:
            agreed, counted = agreement((run, cases), taught)
        versions.append(VersionResult(run.candidate_ref, run.run_id, run.status, scores, agreed, counted))
    first = runs[0][0] if runs else None
    suites = [(s.name, primary_metric(s.kind)) for s in first.suites] if first else []
    return Comparison(
        suites=[*suites, (COMPLETENESS, "answered")], versions=versions, teacher=teacher, notes=notes
    )
