"""The safety domain: PII detectors and redaction, injection patterns, policies and verdicts. Pure."""

from cairn_safety.domain.injection import PATTERNS, InjectionHit, InjectionPattern, find_injections, normalise
from cairn_safety.domain.pii import PiiKind, PiiMatch, find_pii, iban_valid, luhn_valid, redact
from cairn_safety.domain.policy import (
    CheckPolicy,
    InputPolicy,
    OutputPolicy,
    PiiPolicy,
    Policy,
    PolicyError,
    Stage,
    Threshold,
)
from cairn_safety.domain.reviews import ReviewItem, ReviewStatus, review_id_for
from cairn_safety.domain.verdicts import ChunkScan, Decision, Observations, decide

__all__ = [
    "PATTERNS",
    "CheckPolicy",
    "ChunkScan",
    "Decision",
    "InjectionHit",
    "InjectionPattern",
    "InputPolicy",
    "Observations",
    "OutputPolicy",
    "PiiKind",
    "PiiMatch",
    "PiiPolicy",
    "Policy",
    "PolicyError",
    "ReviewItem",
    "ReviewStatus",
    "Stage",
    "Threshold",
    "decide",
    "find_injections",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "normalise",
    "redact",
    "review_id_for",
]
