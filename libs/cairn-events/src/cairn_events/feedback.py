"""Events where people come in: a flagged text waits for human review; a user gives feedback on an answer."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cairn_events.base import Event, Identifier, RequestId, Timestamp
from cairn_events.common import ReviewDecision, SafetyFinding, Verdict

__all__ = ["SOURCE_TAG", "FeedbackSubmittedV1", "ReviewRequestedV1", "ReviewResolvedV1", "named_sources"]


class ReviewRequestedV1(Event):
    """Safety flagged a text for a human reviewer (verdict `review`)."""

    event_type: ClassVar[str] = "cairn.review.requested.v1"
    topic: ClassVar[str] = "cairn.reviews"
    key_field: ClassVar[str] = "request_id"

    review_id: Identifier = Field(description="Id of the review item in safety's review queue.")
    request_id: RequestId = Field(description="The request whose input or output is under review.")
    tenant: str = Field(min_length=1, description="The tenant the request belongs to.")
    stage: Literal["input", "output"] = Field(
        description="Whether the request's input (prompt and context) or the model output was flagged."
    )
    verdict: Verdict = Field(description="The automatic verdict that asked for review.")
    findings: list[SafetyFinding] = Field(description="The checks that ran on the text.")
    text: str = Field(description="The text to review (the last user turn, or the model output).")
    requested_at: Timestamp = Field(description="When the review was requested (RFC 3339).")


class ReviewResolvedV1(Event):
    """A held text was decided: by a reviewer, or by the policy's default when the review's deadline passed.

    `approve` releases the held answer (or, for a held input, lets the request go on to the model);
    `edit` releases the reviewer's corrected text, screened again; `reject` answers the request `blocked`.
    """

    event_type: ClassVar[str] = "cairn.review.resolved.v1"
    topic: ClassVar[str] = "cairn.reviews"
    key_field: ClassVar[str] = "request_id"

    review_id: Identifier = Field(description="Id of the review item in safety's review queue.")
    request_id: RequestId = Field(description="The request whose input or output was under review.")
    tenant: str = Field(min_length=1, description="The tenant the request belongs to.")
    stage: Literal["input", "output"] = Field(
        description="Whether the held text was the input or the output."
    )
    decision: ReviewDecision = Field(description="What was decided.")
    text: str | None = Field(None, description="The reviewer's corrected text; set for `edit` only.")
    reason: str | None = Field(
        None, description="The reviewer's note or reason; for a deadline, which default the policy applied."
    )
    decided_by: str = Field(
        min_length=1,
        description="Who decided: the reviewer's API key id, `cli:<user>` for the command line, or "
        "`deadline` when the policy's default applied.",
    )
    by_deadline: bool = Field(
        False, description="True when no one decided in time and the policy's default applied."
    )
    decided_at: Timestamp = Field(description="When the decision was made (RFC 3339).")


class FeedbackSubmittedV1(Event):
    """An end user (or an operator) rated or corrected an answer.

    Produced by upstream systems on `cairn.feedback`, keyed by the `request_id` of the
    answer. At least one of `rating`, `thumbs`, `comment` or `corrected_answer` should be set.
    """

    event_type: ClassVar[str] = "cairn.feedback.submitted.v1"
    topic: ClassVar[str] = "cairn.feedback"
    key_field: ClassVar[str] = "request_id"

    feedback_id: Identifier = Field(
        description="Unique id chosen by the producer; feedback with an id already seen is a duplicate."
    )
    request_id: RequestId = Field(description="The request whose answer the feedback is about.")
    tenant: str = Field("default", min_length=1, description="The tenant the request belongs to.")
    rating: int | None = Field(None, ge=1, le=5, description="A 1 (bad) to 5 (excellent) rating.")
    thumbs: Literal["up", "down"] | None = Field(None, description="A thumbs up or down.")
    comment: str | None = Field(None, description="Free text from the user.")
    corrected_answer: str | None = Field(
        None, description="What the answer should have been; becomes training data after curation."
    )
    tags: list[str] = Field([], description="Labels for the feedback, e.g. `hallucination`, `off_topic`.")
    user_id: str | None = Field(None, description="Pseudonymous id of who gave the feedback.")
    submitted_at: Timestamp = Field(description="When the feedback was given (RFC 3339).")


# --- the `source:<uri>` tag convention (shared by the feedback service's metric and the retriever's loop) ---
SOURCE_TAG = "source:"
"""Feedback tag naming the source that should have grounded the answer: `source:<uri>`."""


def named_sources(tags: list[str]) -> list[str]:
    """The source URIs feedback names as right (`source:<uri>` tags), in order, without repeats."""
    uris = (t[len(SOURCE_TAG) :].strip() for t in tags if t.startswith(SOURCE_TAG))
    return list(dict.fromkeys(u for u in uris if u))
