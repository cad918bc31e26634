"""The human review queue's items: a flagged input or output waiting for a reviewer's decision."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cairn_events import SafetyFinding, Verdict
from cairn_safety.domain.policy import Stage

__all__ = ["ReviewAlreadyResolvedError", "ReviewItem", "ReviewNotFoundError", "ReviewStatus", "review_id_for"]

_NAMESPACE = uuid.UUID("0b8e5d2c-6a51-4c1e-9f3a-5a7e2d9c4b10")


class ReviewStatus(StrEnum):
    """Where a review item stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ReviewNotFoundError(LookupError):
    """No review item has this id."""


class ReviewAlreadyResolvedError(ValueError):
    """The review item was approved or rejected before."""


def review_id_for(event_id: str, stage: Stage) -> str:
    """The review id of the screening of one event: fixed by the event, so a redelivery finds the same item."""
    return f"rev-{uuid.uuid5(_NAMESPACE, f'{event_id}|{stage}')}"


@dataclass(frozen=True)
class ReviewItem:
    """One text held for human review, with the automatic verdict and findings that flagged it."""

    review_id: str
    request_id: str
    tenant: str
    stage: Stage
    verdict: Verdict
    findings: list[SafetyFinding]
    text: str
    policy: str
    event_id: str
    created_at: datetime
    status: ReviewStatus = ReviewStatus.PENDING
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    note: str | None = field(default=None)
