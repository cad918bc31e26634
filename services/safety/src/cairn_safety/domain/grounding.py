"""The groundedness gate: is an answer supported by the chunks it was generated from, before release?

The score is `cairn_embedding.groundedness`'s: the share of the answer's sentences (weighted by
length) the chunks support, lexically, or blended with sentence-embedding similarity when the policy
asks for it and an embedder is given. Sentences that decline to answer ("I don't know", "the
passages do not say") assert nothing and are not scored: the qa prompt asks the model to say so
when the passages lack the answer, and that is not a hallucination.

Below the policy's threshold the gate fires, and its action applies: `flag` (the answer is released
with the fired finding), `cite` (the answer is replaced by the passages it cited, with a note) or
`review` (the verdict becomes `review`: the answer is held for a reviewer). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cairn_embedding.groundedness import Embed, score_groundedness, sentences
from cairn_events import ContextChunk, SafetyFinding, Verdict
from cairn_safety.domain.policy import SEVERITY, GroundednessAction, GroundednessPolicy
from cairn_safety.domain.verdicts import Decision

__all__ = [
    "CHECK_GROUNDEDNESS",
    "CITE_NOTE",
    "GroundingCheck",
    "apply_grounding",
    "check_groundedness",
    "cited_passages",
    "is_abstention",
]

CHECK_GROUNDEDNESS = "groundedness"
CITE_NOTE = (
    "This answer could not be verified against its sources, so here are the passages it was based on instead:"
)
"""The first line of an answer the `cite` action replaced."""

_ABSTENTION = re.compile(
    r"\b(?:i|we)\s+(?:do\s+not|don['\u2019]t|cannot|can['\u2019]t|could\s+not|couldn't)\s+"
    r"(?:know|find|answer|tell|say|determine)\b"
    r"|\b(?:passages?|context|documentation|sources?)\s+(?:do|does)\s*(?:not|n['\u2019]t)\s+"
    r"(?:contain|say|mention|cover|include|answer|provide)\b"
    r"|\bnot\s+(?:mentioned|covered|stated|answered|provided)\s+in\s+the\s+(?:passages?|context|documentation)\b",
    re.IGNORECASE,
)
_CITED = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORDS = {"flag": "flagged", "cite": "replaced by the cited passages", "review": "held for review"}


def is_abstention(sentence: str) -> bool:
    """Whether a sentence declines to answer (it asserts nothing the chunks could support)."""
    return _ABSTENTION.search(sentence) is not None


@dataclass(frozen=True)
class GroundingCheck:
    """The gate's result on one answer: its finding, the action taken (None: released as it was) and,
    for `cite`, the text that replaces the answer."""

    finding: SafetyFinding
    score: float
    threshold: float
    action: GroundednessAction | None
    replacement: str | None = None


def cited_passages(answer: str, chunks: Sequence[ContextChunk]) -> list[tuple[int, ContextChunk]]:
    """The chunks the answer cites as [n] (1-based, in order, each once); every chunk when it cites none
    that exists."""
    numbers = [int(n) for group in _CITED.findall(answer) for n in group.split(",")]
    cited = sorted({n for n in numbers if 1 <= n <= len(chunks)})
    if not cited:
        cited = list(range(1, len(chunks) + 1))
    return [(n, chunks[n - 1]) for n in cited]


def _cite(answer: str, chunks: Sequence[ContextChunk]) -> str:
    passages = [f"[{n}] {c.text.strip()}\n({c.source_uri})" for n, c in cited_passages(answer, chunks)]
    return "\n\n".join([CITE_NOTE, *passages])


def check_groundedness(
    policy: GroundednessPolicy, answer: str, chunks: Sequence[ContextChunk], embed: Embed | None = None
) -> GroundingCheck | None:
    """Score `answer` against `chunks` under `policy`; None when the gate is off, there are no chunks or
    the answer has no sentence to score. `embed` is used only when the policy is `semantic`."""
    texts = [c.text for c in chunks if c.text.strip()]
    if not policy.enabled or not texts:
        return None
    parts = sentences(answer)
    if not parts:
        return None
    claims = [s for s in parts if not is_abstention(s)]
    mode = "semantic" if policy.semantic and embed is not None else "lexical"
    if not claims:
        detail = f"released; the answer declines to answer ({len(parts)} sentence(s)), nothing to verify"
        finding = SafetyFinding(
            check=CHECK_GROUNDEDNESS, label="abstained", score=1.0, fired=False, detail=detail
        )
        return GroundingCheck(finding, 1.0, policy.threshold, None)
    scored = score_groundedness(" ".join(claims), texts, embed if mode == "semantic" else None)
    if scored is None:  # every claim was a fragment of one word
        return None
    fired = scored.score < policy.threshold
    action: GroundednessAction | None = policy.action if fired else None
    taken = _WORDS[action] if action is not None else "released"
    detail = (
        f"{taken}; {len(scored.unsupported)} of {len(scored.sentences)} sentence(s) unsupported "
        f"by {len(texts)} chunk(s); {mode}, threshold {policy.threshold:.2f}"
    )
    label = "unsupported" if fired else "supported"
    finding = SafetyFinding(
        check=CHECK_GROUNDEDNESS, label=label, score=round(scored.score, 6), fired=fired, detail=detail
    )
    replacement = _cite(answer, chunks) if action == "cite" else None
    return GroundingCheck(finding, scored.score, policy.threshold, action, replacement)


def apply_grounding(decision: Decision, check: GroundingCheck) -> Decision:
    """The decision with the gate's finding added; for `review` the verdict is raised to review, with
    the reason."""
    findings = [*decision.findings, check.finding]
    if check.action != "review":
        return replace(decision, findings=findings)
    reason = f"{CHECK_GROUNDEDNESS} score {check.score:.2f} < {check.threshold:.2f}"
    if SEVERITY[Verdict.REVIEW] > SEVERITY[decision.verdict]:
        return replace(decision, verdict=Verdict.REVIEW, findings=findings, reasons=[reason])
    return replace(decision, findings=findings, reasons=[*decision.reasons, reason])
