"""The feedback service's handlers: store each request's events and feedback, whatever their order.

Every handler is an idempotent upsert keyed by the request (or feedback) id: a redelivered event
changes nothing, so no inbox claim is needed, and none of them publishes.
"""

from __future__ import annotations

from cairn_auth.encryption import TENANT_ERASE
from cairn_bus import EventMeta
from cairn_events import (
    AdminActionRecordedV1,
    FeedbackSubmittedV1,
    InputScreenedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ReviewResolvedV1,
)
from cairn_events.feedback import named_sources
from cairn_feedback.bootstrap import Deps
from cairn_feedback.domain.records import RequestTrail
from cairn_feedback.domain.reviews import review_feedback
from cairn_observability import RETRIEVAL_SOURCE_FEEDBACK, get_logger

log = get_logger("cairn.feedback")


async def on_admin_action(event: AdminActionRecordedV1, meta: EventMeta, deps: Deps) -> None:
    """A tenant's erasure (`tenant.erase`): destroy this service's key for the tenant and the
    tenant's key in the object store (both idempotent), so the tenant's stored requests, answers and
    feedback, and its rows in every dataset version, can never be read again. Other actions are not
    this service's business."""
    if event.action != TENANT_ERASE:
        return
    if deps.keyring is None and deps.dataset_keyring is None:
        log.warning(
            "tenant erasure asked, but no master key is configured: payloads are not encrypted",
            tenant=event.target,
        )
        return
    destroyed = await deps.keyring.erase(event.target) if deps.keyring is not None else 0
    dataset_keys = await deps.dataset_keyring.erase(event.target) if deps.dataset_keyring is not None else 0
    log.info(
        "tenant erased", tenant=event.target, keys_destroyed=destroyed, dataset_keys_destroyed=dataset_keys
    )


async def on_request_submitted(event: RequestSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the request as submitted (prompt ref, variables, messages, retrieval, model, user)."""
    await deps.repository.save_request(event, meta.id)


async def on_input_screened(event: InputScreenedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the request's exact model input after redaction, with the prompt name and version."""
    await deps.repository.save_screening(event, meta.id)


async def on_response_completed(event: ResponseCompletedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the request's final answer (status, text, model that served it). The answer of a replay
    (`replay_id` set: it came from `cairn.responses.shadow`) is kept apart as a shadow answer: the
    `teacher:` rule may take it, no other rule sees it, and it never replaces the live answer."""
    await deps.repository.save_response(event, meta.id, shadow=meta.replay_id is not None)


async def on_feedback_submitted(event: FeedbackSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the feedback, even before (or without) the request it is about; a seen feedback id is a
    duplicate and changes nothing. New feedback naming the right source (`source:<uri>` tags) counts
    in `cairn_retrieval_source_feedback_total` whether the request retrieved it; new feedback also
    starts the dataset policies' quiet period (`auto_datasets`)."""
    stored = await deps.repository.save_feedback(event, meta.id)
    if stored:
        feedback_arrived(deps)
    log.info(
        "feedback stored" if stored else "feedback already stored",
        feedback_id=event.feedback_id,
        request_id=event.request_id,
    )
    named = named_sources(event.tags)
    if stored and named:
        trail = await deps.repository.trail(event.request_id)
        for uri in named:
            RETRIEVAL_SOURCE_FEEDBACK.labels(event.tenant, source_outcome(uri, trail)).inc()


async def on_review_resolved(event: ReviewResolvedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep a reviewer's decision on a held answer as feedback on the request (approve: thumbs up;
    reject: thumbs down with the reason; edit: a correction), its id fixed by the review, tagged
    `review`. A decision the deadline made is not feedback (no one judged the answer)."""
    feedback = review_feedback(event)
    if feedback is None:
        log.info("review decided by its deadline; no feedback", review_id=event.review_id)
        return
    stored = await deps.repository.save_feedback(feedback, meta.id)
    if stored:
        feedback_arrived(deps)
    log.info(
        "review decision stored as feedback" if stored else "review decision already stored",
        feedback_id=feedback.feedback_id,
        request_id=event.request_id,
        decision=event.decision.value,
    )


def feedback_arrived(deps: Deps) -> None:
    """Tell the dataset policies (when they run) that new feedback was stored."""
    if deps.auto_datasets is not None:
        deps.auto_datasets.feedback_arrived()


def source_outcome(uri: str, trail: RequestTrail) -> str:
    """Whether the request retrieved the source the feedback names: `retrieved` when a chunk from
    `uri` was in its context (the response's citations, else the screened input's chunks),
    `missed` when not, `unknown` while neither has been seen."""
    if trail.response is not None and trail.response.citations:
        chunks = trail.response.citations
    elif trail.screening is not None:
        chunks = trail.screening.chunks
    elif trail.response is not None:
        chunks = []
    else:
        return "unknown"
    return "retrieved" if any(c.source_uri == uri for c in chunks) else "missed"
