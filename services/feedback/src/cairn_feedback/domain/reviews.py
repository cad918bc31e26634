"""Review decisions as feedback: what a human reviewer decided about a held answer is a judgement of
it, kept like any other feedback so datasets can learn from it (tagged, so they can tell)."""

from __future__ import annotations

from cairn_events import FeedbackSubmittedV1, ReviewDecision, ReviewResolvedV1

__all__ = ["REVIEW_TAG", "feedback_id_for", "review_feedback"]

REVIEW_TAG = "review"
"""Tag of every feedback that came from a review decision (plus `review:<decision>` and `review:<stage>`)."""


def feedback_id_for(review_id: str) -> str:
    """The feedback id of a review's decision: one per review, so a redelivered decision is a duplicate."""
    return f"{REVIEW_TAG}:{review_id}"


def review_feedback(event: ReviewResolvedV1) -> FeedbackSubmittedV1 | None:
    """The feedback a decision gives: approve → thumbs up; reject → thumbs down with the reason; edit →
    a correction (`corrected_answer`, the reviewer's text). None for a decision made by the deadline:
    no one judged the answer, so it says nothing about its quality."""
    if event.by_deadline:
        return None
    thumbs = {ReviewDecision.APPROVE: "up", ReviewDecision.REJECT: "down"}.get(event.decision)
    return FeedbackSubmittedV1(
        feedback_id=feedback_id_for(event.review_id),
        request_id=event.request_id,
        tenant=event.tenant,
        thumbs=thumbs,
        comment=event.reason,
        corrected_answer=event.text if event.decision is ReviewDecision.EDIT else None,
        tags=[REVIEW_TAG, f"{REVIEW_TAG}:{event.decision.value}", f"{REVIEW_TAG}:{event.stage}"],
        user_id=event.decided_by,
        submitted_at=event.decided_at,
    )
