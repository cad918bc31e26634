"""From what the checks observed to a verdict: findings with scores, which fired, and why.

`decide` is pure: the checks ran elsewhere (concurrently); here their observations meet the
stage's policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cairn_events import SafetyFinding, Verdict
from cairn_safety.domain.injection import InjectionHit
from cairn_safety.domain.pii import PiiKind, PiiMatch
from cairn_safety.domain.policy import SEVERITY, CheckPolicy, InputPolicy, OutputPolicy, Policy, Stage

__all__ = [
    "CHECK_CONTEXT_INJECTION",
    "CHECK_INJECTION",
    "CHECK_JAILBREAK",
    "CHECK_TOXICITY",
    "ChunkScan",
    "Decision",
    "Observations",
    "decide",
]

CHECK_TOXICITY = "toxicity"
CHECK_INJECTION = "prompt_injection"
CHECK_CONTEXT_INJECTION = "prompt_injection.context"
CHECK_JAILBREAK = "jailbreak"
CHECK_PII = "pii"


@dataclass(frozen=True)
class ChunkScan:
    """Injection patterns found in one retrieved chunk."""

    chunk_id: str
    document_id: str
    hits: Sequence[InjectionHit]


@dataclass(frozen=True)
class Observations:
    """What the checks saw in the screened texts; None for a check that did not run."""

    toxicity: Sequence[float] | None = None
    classifier: str = ""
    pii: Sequence[Sequence[PiiMatch]] | None = None
    injection: Sequence[Sequence[InjectionHit]] | None = None
    context: Sequence[ChunkScan] | None = None
    jailbreak: Sequence[Sequence[InjectionHit]] | None = None
    """Output only: the jailbroken-answer patterns found in each text."""


@dataclass(frozen=True)
class Decision:
    """A screening's verdict, every finding, the reasons for the verdict and the PII kinds to redact."""

    stage: Stage
    policy: str
    verdict: Verdict
    findings: list[SafetyFinding]
    reasons: list[str] = field(default_factory=list)
    redact_kinds: frozenset[PiiKind] = frozenset()

    @property
    def fired(self) -> list[SafetyFinding]:
        """The findings whose threshold was crossed."""
        return [f for f in self.findings if f.fired]

    def reason(self) -> str:
        """One line: which checks decided the verdict, with their scores and thresholds."""
        if not self.reasons:
            return f"{self.stage} allowed by safety policy {self.policy}"
        word = {Verdict.BLOCK: "blocked", Verdict.REVIEW: "held for review", Verdict.REDACT: "redacted"}
        return (
            f"{self.stage} {word.get(self.verdict, 'allowed')} by safety policy {self.policy}: "
            + "; ".join(self.reasons)
        )


@dataclass(frozen=True)
class _Scored:
    finding: SafetyFinding
    action: Verdict
    threshold: float | None


def _score(check: CheckPolicy, name: str, label: str, score: float, detail: str | None) -> _Scored:
    action = check.action_for(score)
    fired = action is not Verdict.ALLOW
    finding = SafetyFinding(check=name, label=label, score=round(score, 6), fired=fired, detail=detail)
    return _Scored(finding, action, check.threshold_for(score) if fired else None)


def _where(index: int, total: int, noun: str = "user turn") -> str:
    return f"{noun} {index + 1} of {total}" if total > 1 else noun


def _toxicity(check: CheckPolicy, scores: Sequence[float], classifier: str, noun: str) -> list[_Scored]:
    if not scores:
        return [_score(check, CHECK_TOXICITY, "toxic", 0.0, f"classifier {classifier}; no text")]
    top = max(range(len(scores)), key=lambda i: scores[i])
    detail = f"classifier {classifier}; highest in {_where(top, len(scores), noun)}"
    return [_score(check, CHECK_TOXICITY, "toxic", float(scores[top]), detail)]


def _pii(check: CheckPolicy, per_text: Sequence[Sequence[PiiMatch]], noun: str) -> list[_Scored]:
    by_kind: dict[PiiKind, list[tuple[int, PiiMatch]]] = {}
    for i, matches in enumerate(per_text):
        for m in matches:
            by_kind.setdefault(m.kind, []).append((i, m))
    if not by_kind:
        return [_score(check, CHECK_PII, "none", 0.0, "no personal data found")]
    out = []
    for kind in PiiKind:  # stable order
        found = by_kind.get(kind)
        if not found:
            continue
        places = sorted({i for i, _ in found})
        where = ", ".join(_where(i, len(per_text), noun) for i in places)
        detail = f"{len(found)} found ({where})"
        out.append(
            _score(
                check, f"{CHECK_PII}.{kind.value}", kind.label, max(m.confidence for _, m in found), detail
            )
        )
    return out


def _patterns(
    check: CheckPolicy,
    per_text: Sequence[Sequence[InjectionHit]],
    noun: str,
    name: str = CHECK_INJECTION,
    nothing: str = "no injection pattern matched",
) -> list[_Scored]:
    by_name: dict[str, tuple[InjectionHit, list[int]]] = {}
    for i, hits in enumerate(per_text):
        for h in hits:
            by_name.setdefault(h.name, (h, []))[1].append(i)
    if not by_name:
        return [_score(check, name, "none", 0.0, nothing)]
    out = []
    for hit, places in sorted(by_name.values(), key=lambda v: -v[0].score):
        where = ", ".join(_where(i, len(per_text), noun) for i in places)
        out.append(_score(check, name, hit.name, hit.score, f"{hit.description} ({where})"))
    return out


def _context(check: CheckPolicy, chunks: Sequence[ChunkScan]) -> list[_Scored]:
    out = []
    for chunk in chunks:
        for hit in chunk.hits:
            detail = f"{hit.description} (chunk {chunk.chunk_id} of document {chunk.document_id})"
            out.append(_score(check, CHECK_CONTEXT_INJECTION, hit.name, hit.score, detail))
    if not out:
        detail = f"no injection pattern matched in {len(chunks)} chunk(s)"
        out.append(_score(check, CHECK_CONTEXT_INJECTION, "none", 0.0, detail))
    return out


def _reason(s: _Scored) -> str:
    f = s.finding
    labelled = (CHECK_INJECTION, CHECK_CONTEXT_INJECTION, CHECK_JAILBREAK)
    name = f"{f.check} ({f.label})" if f.check in labelled else f.check
    return f"{name} score {f.score:.2f} ≥ {s.threshold:.2f}"


def decide(stage: Stage, policy: Policy, seen: Observations) -> Decision:
    """The verdict of one screening under `policy`: findings for every check that ran, reasons, redactions."""
    rules: InputPolicy | OutputPolicy = policy.input if stage == "input" else policy.output
    noun = "user turn" if stage == "input" else "output"
    scored: list[_Scored] = []
    if seen.toxicity is not None and rules.toxicity.enabled:
        scored += _toxicity(rules.toxicity, seen.toxicity, seen.classifier, noun)
    if seen.pii is not None and rules.pii.enabled:
        scored += _pii(rules.pii, seen.pii, noun)
    if seen.injection is not None and rules.injection.enabled:
        scored += _patterns(rules.injection, seen.injection, noun)
    if seen.context is not None and isinstance(rules, InputPolicy) and rules.context_injection.enabled:
        scored += _context(rules.context_injection, seen.context)
    if seen.jailbreak is not None and isinstance(rules, OutputPolicy) and rules.jailbreak.enabled:
        nothing = "no sign of a jailbroken answer"
        scored += _patterns(rules.jailbreak, seen.jailbreak, noun, CHECK_JAILBREAK, nothing)
    verdict = max((s.action for s in scored), key=lambda v: SEVERITY[v], default=Verdict.ALLOW)
    reasons = [_reason(s) for s in scored if s.action is verdict and verdict is not Verdict.ALLOW]
    redact_kinds = frozenset(
        PiiKind(s.finding.check.removeprefix(f"{CHECK_PII}."))
        for s in scored
        if s.finding.fired and s.finding.check.startswith(f"{CHECK_PII}.")
    )
    return Decision(stage, policy.ref, verdict, [s.finding for s in scored], reasons, redact_kinds)
