"""The human review queue's items: a flagged input or output waiting for a reviewer's decision.

An item keeps what its release needs (`release`): for a held output the would-be completed
response, for a held input the screened conversation that goes on to the model. A decision
(approve, edit, reject; a reviewer's, or the policy's default once `deadline_at` passes) is made
once and announced as `cairn.review.resolved.v1`; the safety service then answers the request.

An item whose tenant was erased (`cairn_auth.encryption`) reads `erased`: its text, note, edited
text and held answer are gone (`[erased]`), so no decision on it releases anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from cairn_events import ReviewDecision, ReviewResolvedV1, SafetyFinding, Verdict
from cairn_safety.domain.policy import Stage

__all__ = [
    "DEADLINE",
    "ERASED_REASON",
    "ReviewAlreadyResolvedError",
    "ReviewItem",
    "ReviewNotFoundError",
    "ReviewStatus",
    "at_deadline",
    "deadline_note",
    "decided",
    "resolution_event",
    "review_id_for",
    "status_of",
]

_NAMESPACE = uuid.UUID("0b8e5d2c-6a51-4c1e-9f3a-5a7e2d9c4b10")

DEADLINE = "deadline"
"""`resolved_by` of an item decided by its policy's default because its deadline passed."""
ERASED_REASON = "tenant erased: the held content is gone, nothing is released"
"""The reason of the `blocked` answer to a held request whose tenant was erased before its release."""


class ReviewStatus(StrEnum):
    """Where a review item stands."""

    PENDING = "pending"
    APPROVED = "approved"
    EDITED = "edited"
    REJECTED = "rejected"


_STATUS = {
    ReviewDecision.APPROVE: ReviewStatus.APPROVED,
    ReviewDecision.EDIT: ReviewStatus.EDITED,
    ReviewDecision.REJECT: ReviewStatus.REJECTED,
}


def status_of(decision: ReviewDecision) -> ReviewStatus:
    """The status an item takes when `decision` is made."""
    return _STATUS[decision]


class ReviewNotFoundError(LookupError):
    """No review item has this id."""


class ReviewAlreadyResolvedError(ValueError):
    """The review item was decided before."""


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
    release: dict[str, Any] = field(default_factory=dict)
    """What a release needs: `response` (output stage: the would-be completed response, as JSON) or
    `screened` (input stage: the `InputScreenedV1` that lets the request go on), and `envelope`
    (correlation id, trace and replay headers of the screened event)."""
    deadline_at: datetime | None = None
    """When the policy's default applies if no one has decided (None: never)."""
    on_deadline: ReviewDecision = ReviewDecision.REJECT
    """The policy's default decision at the deadline (approve or reject)."""
    edited_text: str | None = None
    """The reviewer's corrected text, for an `edit`."""
    erased: bool = False
    """Whether the item's tenant was erased: `text` (and any note or edited text sealed before the
    erasure) reads `[erased]` and `release` keeps only its `envelope`, nothing to release."""

    @property
    def decision(self) -> ReviewDecision | None:
        """What was decided, or None while pending."""
        for decision, status in _STATUS.items():
            if status is self.status:
                return decision
        return None

    @property
    def by_deadline(self) -> bool:
        """Whether the policy's default applied because no one decided in time."""
        return self.resolved_by == DEADLINE


def deadline_note(item: ReviewItem) -> str:
    """The reason recorded when an item's deadline passed and its policy's default applied."""
    return f"no decision by the deadline; policy {item.policy} defaults to {item.on_deadline.value}"


def decided(
    item: ReviewItem,
    decision: ReviewDecision,
    by: str,
    note: str | None,
    text: str | None,
    at: datetime,
) -> ReviewItem:
    """`item` decided: its status, who and when, the note and (for an edit) the corrected text."""
    if decision is ReviewDecision.EDIT and not (text and text.strip()):
        raise ValueError("an edit needs the corrected text")
    return replace(
        item,
        status=status_of(decision),
        resolved_by=by,
        resolved_at=at,
        note=note,
        edited_text=text if decision is ReviewDecision.EDIT else None,
    )


def at_deadline(item: ReviewItem, now: datetime) -> ReviewItem:
    """`item` decided by its policy's default because its deadline passed."""
    return decided(item, item.on_deadline, DEADLINE, deadline_note(item), None, now)


def resolution_event(item: ReviewItem) -> ReviewResolvedV1:
    """The `cairn.review.resolved.v1` of a decided item."""
    decision = item.decision
    if decision is None or item.resolved_by is None or item.resolved_at is None:
        raise ValueError(f"review {item.review_id} is not decided")
    return ReviewResolvedV1(
        review_id=item.review_id,
        request_id=item.request_id,
        tenant=item.tenant,
        stage=item.stage,
        decision=decision,
        text=item.edited_text if decision is ReviewDecision.EDIT else None,
        reason=item.note,
        decided_by=item.resolved_by,
        by_deadline=item.by_deadline,
        decided_at=item.resolved_at,
    )
