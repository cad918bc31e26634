"""The safety domain: text normalisation, PII detectors and redaction, injection and jailbroken-answer
patterns, policies and verdicts. Pure."""

from cairn_safety.domain.injection import (
    PATTERNS,
    VOCABULARY,
    InjectionHit,
    InjectionPattern,
    find_injections,
)
from cairn_safety.domain.jailbreak_output import OUTPUT_PATTERNS, find_jailbreak_output
from cairn_safety.domain.normalise import TextView, normalise, skeleton, views
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
    "OUTPUT_PATTERNS",
    "PATTERNS",
    "VOCABULARY",
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
    "TextView",
    "Threshold",
    "decide",
    "find_injections",
    "find_jailbreak_output",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "normalise",
    "redact",
    "review_id_for",
    "skeleton",
    "views",
]
