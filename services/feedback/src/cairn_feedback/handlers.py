"""The feedback service's handlers: store each request's events and feedback, whatever their order.

Every handler is an idempotent upsert keyed by the request (or feedback) id: a redelivered event
changes nothing, so no inbox claim is needed, and none of them publishes.
"""

from __future__ import annotations

from cairn_bus import EventMeta
from cairn_events import FeedbackSubmittedV1, InputScreenedV1, RequestSubmittedV1, ResponseCompletedV1
from cairn_feedback.bootstrap import Deps
from cairn_observability import get_logger

log = get_logger("cairn.feedback")


async def on_request_submitted(event: RequestSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the request as submitted (prompt ref, variables, messages, retrieval, model, user)."""
    await deps.repository.save_request(event, meta.id)


async def on_input_screened(event: InputScreenedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the request's exact model input after redaction, with the prompt name and version."""
    await deps.repository.save_screening(event, meta.id)


async def on_response_completed(event: ResponseCompletedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the request's final answer (status, text, model that served it)."""
    await deps.repository.save_response(event, meta.id)


async def on_feedback_submitted(event: FeedbackSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the feedback, even before (or without) the request it is about; a seen feedback id is a
    duplicate and changes nothing."""
    stored = await deps.repository.save_feedback(event, meta.id)
    log.info(
        "feedback stored" if stored else "feedback already stored",
        feedback_id=event.feedback_id,
        request_id=event.request_id,
    )
