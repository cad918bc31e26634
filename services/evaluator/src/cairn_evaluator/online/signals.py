"""Drift of one scope (tenant and prompt): each signal of a recent window against its reference,
and the alerts the drifted signals raise. Signals with too few samples are skipped, not guessed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from cairn_evaluator.online.drift import DriftSignal, embedding_drift, mean_drop, psi, rate_change
from cairn_evaluator.online.records import FeedbackRecord, RequestRecord, ResponseRecord

__all__ = [
    "ALERT_NAMES",
    "AlertSpec",
    "ScopeDrift",
    "Thresholds",
    "WindowSamples",
    "alerts_for",
    "compare",
]

ALERT_NAMES: dict[str, str] = {
    "request_embedding": "RequestDriftDetected",
    "prompt_length": "PromptLengthDrift",
    "input_tokens": "TokenUsageDrift",
    "output_tokens": "TokenUsageDrift",
    "refusal_rate": "RefusalRateDrift",
    "feedback_score": "FeedbackScoreDrift",
    "groundedness": "GroundednessDropped",
}
"""The alert each signal raises (both token signals raise one alert)."""

_WORDS: dict[str, str] = {
    "RequestDriftDetected": "Requests drifted",
    "PromptLengthDrift": "Prompt lengths drifted",
    "TokenUsageDrift": "Token usage drifted",
    "RefusalRateDrift": "Refusal rate changed",
    "FeedbackScoreDrift": "Feedback scores drifted",
    "GroundednessDropped": "Groundedness dropped",
}


@dataclass(frozen=True)
class Thresholds:
    """What each statistic is held to, and the fewest samples per window a signal needs."""

    centroid_distance: float = 0.1
    psi: float = 0.25
    refusal_rate: float = 0.1
    groundedness_drop: float = 0.15
    min_samples: int = 30


@dataclass(frozen=True)
class WindowSamples:
    """The values of one window of one scope, signal by signal."""

    embeddings: list[list[float]] = field(default_factory=list)
    prompt_lengths: list[float] = field(default_factory=list)
    input_tokens: list[float] = field(default_factory=list)
    output_tokens: list[float] = field(default_factory=list)
    refusals: list[bool] = field(default_factory=list)
    groundedness: list[float] = field(default_factory=list)
    feedback_scores: list[float] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        requests: Sequence[RequestRecord],
        responses: Sequence[ResponseRecord],
        feedback: Sequence[FeedbackRecord],
    ) -> WindowSamples:
        """The samples of a window's records."""
        return cls(
            embeddings=[r.embedding for r in requests if r.embedding],
            prompt_lengths=[float(r.prompt_length) for r in requests],
            input_tokens=[float(r.input_tokens) for r in responses if r.input_tokens is not None],
            output_tokens=[float(r.output_tokens) for r in responses if r.output_tokens is not None],
            refusals=[r.refused for r in responses],
            groundedness=[r.groundedness for r in responses if r.groundedness is not None],
            feedback_scores=[float(f.rating) for f in feedback if f.rating is not None],
        )


@dataclass(frozen=True)
class ScopeDrift:
    """The signals of one scope; `skipped` names those without enough samples."""

    tenant: str
    prompt: str
    models: tuple[str, ...]
    signals: tuple[DriftSignal, ...]
    skipped: tuple[str, ...] = ()

    @property
    def drifted(self) -> list[DriftSignal]:
        """The signals above their threshold."""
        return [s for s in self.signals if s.drifted]


def compare(
    reference: WindowSamples, recent: WindowSamples, thresholds: Thresholds
) -> tuple[list[DriftSignal], list[str]]:
    """Every signal with at least `min_samples` values in both windows, and the names of the others."""
    signals: list[DriftSignal] = []
    skipped: list[str] = []
    least = thresholds.min_samples

    def enough(name: str, ref: Sequence[object], cur: Sequence[object]) -> bool:
        if len(ref) >= least and len(cur) >= least:
            return True
        skipped.append(f"{name} ({len(ref)}/{len(cur)} samples, {least} needed)")
        return False

    if enough("request_embedding", reference.embeddings, recent.embeddings):
        signals += embedding_drift(
            reference.embeddings,
            recent.embeddings,
            centroid_threshold=thresholds.centroid_distance,
            psi_threshold=thresholds.psi,
        )
    numeric = (
        ("prompt_length", reference.prompt_lengths, recent.prompt_lengths),
        ("input_tokens", reference.input_tokens, recent.input_tokens),
        ("output_tokens", reference.output_tokens, recent.output_tokens),
        ("feedback_score", reference.feedback_scores, recent.feedback_scores),
    )
    for name, ref, cur in numeric:
        if enough(name, ref, cur):
            signals.append(DriftSignal(name, "psi", psi(ref, cur), thresholds.psi, len(ref), len(cur)))
    if enough("refusal_rate", reference.refusals, recent.refusals):
        change = rate_change(reference.refusals, recent.refusals)
        signals.append(
            DriftSignal(
                "refusal_rate",
                "abs_change",
                change,
                thresholds.refusal_rate,
                len(reference.refusals),
                len(recent.refusals),
            )
        )
    if enough("groundedness", reference.groundedness, recent.groundedness):
        drop = mean_drop(reference.groundedness, recent.groundedness)
        signals.append(
            DriftSignal(
                "groundedness",
                "mean_drop",
                drop,
                thresholds.groundedness_drop,
                len(reference.groundedness),
                len(recent.groundedness),
            )
        )
    return signals, skipped


@dataclass(frozen=True)
class AlertSpec:
    """An alert to raise: its name, the cooldown key, severity, words, labels and the value."""

    alert_name: str
    key: str
    severity: Literal["warning", "critical"]
    summary: str
    labels: dict[str, str]
    value: float


def alerts_for(scope: ScopeDrift) -> list[AlertSpec]:
    """One alert per alert name with a drifted signal; critical at twice the threshold or more."""
    by_name: dict[str, list[DriftSignal]] = {}
    for signal in scope.drifted:
        by_name.setdefault(ALERT_NAMES[signal.name], []).append(signal)
    model = ",".join(scope.models) or "-"
    specs: list[AlertSpec] = []
    for alert_name, drifted in by_name.items():
        values = ", ".join(
            f"{s.name} {s.statistic} {s.value:.3f} > {s.threshold:g}"
            f" (reference {s.reference_size}, recent {s.recent_size})"
            for s in drifted
        )
        critical = any(s.value >= 2 * s.threshold for s in drifted)
        signal_names = ",".join(sorted({s.name for s in drifted}))
        specs.append(
            AlertSpec(
                alert_name=alert_name,
                key=f"{alert_name}|{scope.tenant}|{scope.prompt}",
                severity="critical" if critical else "warning",
                summary=f"{_WORDS[alert_name]} for prompt {scope.prompt} of tenant {scope.tenant}"
                f" (model {model}): {values}.",
                labels={
                    "signal": signal_names,
                    "statistic": ",".join(s.statistic for s in drifted),
                    "tenant": scope.tenant,
                    "prompt": scope.prompt,
                    "model": model,
                },
                value=round(drifted[0].value, 6),
            )
        )
    return specs
