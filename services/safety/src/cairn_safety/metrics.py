"""The safety service's Prometheus metrics: instruments of cairn-observability's metric catalog
(served with the bus metrics on `CAIRN_METRICS_PORT`): verdicts, checks fired, review decisions and
the groundedness gate."""

from __future__ import annotations

from cairn_events import ReviewResolvedV1
from cairn_observability.metrics import (
    SAFETY_CHECKS_FIRED,
    SAFETY_GROUNDEDNESS_ACTIONS,
    SAFETY_GROUNDEDNESS_SCORE,
    SAFETY_REVIEWS_RESOLVED,
    SAFETY_VERDICTS,
)

__all__ = [
    "SAFETY_CHECKS_FIRED",
    "SAFETY_GROUNDEDNESS_ACTIONS",
    "SAFETY_GROUNDEDNESS_SCORE",
    "SAFETY_REVIEWS_RESOLVED",
    "SAFETY_VERDICTS",
    "record_decision",
    "record_grounding",
]


def record_decision(event: ReviewResolvedV1) -> None:
    """Count one review decision (the service counts each once, when it answers the request)."""
    by = "deadline" if event.by_deadline else "reviewer"
    SAFETY_REVIEWS_RESOLVED.labels(event.stage, event.decision.value, by).inc()


def record_grounding(policy: str, score: float, action: str | None) -> None:
    """Count one answer the groundedness gate scored: its score, and its action (`pass` for none)."""
    SAFETY_GROUNDEDNESS_SCORE.labels(policy).observe(score)
    SAFETY_GROUNDEDNESS_ACTIONS.labels(policy, action or "pass").inc()
