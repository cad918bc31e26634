"""The safety handlers: screen a request's input before inference and the model's output after it.

Each handled event is claimed in the PostgreSQL inbox in the same transaction as the review item
it may queue, and its events are published before that transaction commits: a redelivered event
finds its claim and publishes nothing; a crash before the commit leaves it unclaimed, and the
retry publishes events with the same derived ids (which consumers recognise).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cairn_bus import EventMeta
from cairn_events import (
    CompletionGeneratedV1,
    ContextAssembledV1,
    Event,
    InputScreenedV1,
    ResponseCompletedV1,
    ResponseStatus,
    ReviewRequestedV1,
    Verdict,
)
from cairn_observability import get_logger, record_request_outcome
from cairn_safety.bootstrap import Deps
from cairn_safety.domain.policy import Policy, PolicyError, Stage
from cairn_safety.domain.reviews import ReviewItem, review_id_for
from cairn_safety.domain.verdicts import Decision
from cairn_safety.metrics import SAFETY_CHECKS_FIRED, SAFETY_VERDICTS

__all__ = [
    "INPUT_CONSUMER",
    "OUTPUT_CONSUMER",
    "REVIEW_REASON",
    "on_completion_generated",
    "on_context_assembled",
]

INPUT_CONSUMER = "safety.on_context_assembled"
"""The inbox consumer name of input screening."""
OUTPUT_CONSUMER = "safety.on_completion_generated"
"""The inbox consumer name of output screening."""
REVIEW_REASON = "held for human review"
"""The reason of the blocked response that answers a request held for review."""

log = get_logger("cairn.safety")


async def _publish_once(
    deps: Deps, consumer: str, meta: EventMeta, events: Sequence[Event], review: ReviewItem | None = None
) -> bool:
    """Claim the event, queue the review (if any) and publish, all or nothing; False for a duplicate."""
    async with deps.reviews.once(consumer, meta.id) as tx:
        if tx is None:
            log.info("event already screened; nothing published", event_id=meta.id, consumer=consumer)
            return False
        if review is not None:
            await tx.add(review)
        for event in events:
            await deps.publisher.publish(event, cause=meta)
    for event in events:
        if isinstance(event, ResponseCompletedV1):  # the request ends here
            record_request_outcome(event.status.value, event.tenant, event.prompt_name, event.completed_at)
    return True


def _log_verdict(message: str, decision: Decision) -> None:
    """Block and review verdicts at INFO (operators act on them); allow and redact at DEBUG, like every
    other per-message log."""
    level = log.info if decision.verdict in (Verdict.BLOCK, Verdict.REVIEW) else log.debug
    level(message, verdict=decision.verdict.value, policy=decision.policy, reason=decision.reason())


def _count(decision: Decision) -> None:
    SAFETY_VERDICTS.labels(decision.stage, decision.verdict.value, decision.policy).inc()
    for finding in decision.fired:
        SAFETY_CHECKS_FIRED.labels(decision.stage, finding.check).inc()


def _review(
    decision: Decision, meta: EventMeta, request_id: str, tenant: str, text: str, now: datetime
) -> tuple[ReviewItem, ReviewRequestedV1]:
    stage: Stage = decision.stage
    item = ReviewItem(
        review_id=review_id_for(meta.id, stage),
        request_id=request_id,
        tenant=tenant,
        stage=stage,
        verdict=decision.verdict,
        findings=decision.findings,
        text=text,
        policy=decision.policy,
        event_id=meta.id,
        created_at=now,
    )
    event = ReviewRequestedV1(
        review_id=item.review_id,
        request_id=request_id,
        tenant=tenant,
        stage=stage,
        verdict=decision.verdict,
        findings=decision.findings,
        text=text,
        requested_at=now,
    )
    return item, event


async def _policy_or_fail(
    deps: Deps, consumer: str, meta: EventMeta, fields: dict[str, Any]
) -> Policy | None:
    """The tenant's policy; without a valid one the request is answered `failed` (once) and None returned."""
    try:
        return deps.policies.policy_for(fields["tenant"])
    except PolicyError as exc:
        log.error("no valid safety policy; request failed", tenant=fields["tenant"], error=str(exc))
        failed = ResponseCompletedV1(
            status=ResponseStatus.FAILED,
            reason=f"no valid safety policy for tenant {fields['tenant']!r}",
            **fields,
        )
        await _publish_once(deps, consumer, meta, [failed])
        return None


def _refusal(
    decision: Decision, meta: EventMeta, fields: dict[str, Any], review_text: str
) -> tuple[list[Event], ReviewItem | None]:
    """What a block or review answers: a blocked response, and for review a queued item announced first."""
    held = decision.verdict is Verdict.REVIEW
    blocked = ResponseCompletedV1(
        status=ResponseStatus.BLOCKED,
        reason=REVIEW_REASON if held else decision.reason(),
        verdict=decision.verdict,
        findings=decision.findings,
        **fields,
    )
    if not held:
        return [blocked], None
    review, requested = _review(
        decision, meta, fields["request_id"], fields["tenant"], review_text, fields["completed_at"]
    )
    return [requested, blocked], review


async def on_context_assembled(event: ContextAssembledV1, meta: EventMeta, deps: Deps) -> None:
    """Screen the input: allow/redact → InputScreenedV1; block → a blocked response; review → a queued
    review, ReviewRequestedV1 and a blocked response (so upstream is answered)."""
    now = datetime.now(UTC)
    prompt: dict[str, Any] = {"prompt_name": event.prompt_name, "prompt_version": event.prompt_version}
    fields = {"request_id": event.request_id, "tenant": event.tenant, "completed_at": now, **prompt}
    policy = await _policy_or_fail(deps, INPUT_CONSUMER, meta, fields)
    if policy is None:
        return
    screening = await deps.screener.screen_input(event, policy)
    decision = screening.decision
    review: ReviewItem | None = None
    out: list[Event]
    if decision.verdict in (Verdict.ALLOW, Verdict.REDACT):
        out = [
            InputScreenedV1(
                request_id=event.request_id,
                tenant=event.tenant,
                verdict=decision.verdict,
                findings=decision.findings,
                policy=decision.policy,
                messages=screening.messages,
                chunks=event.chunks,
                params=event.params,
                model=event.model,
                screened_at=now,
                **prompt,
            )
        ]
    else:
        fields = {"request_id": event.request_id, "tenant": event.tenant, "completed_at": now, **prompt}
        out, review = _refusal(decision, meta, fields, screening.review_text)
    if await _publish_once(deps, INPUT_CONSUMER, meta, out, review):
        _count(decision)
        _log_verdict("input screened", decision)


async def on_completion_generated(event: CompletionGeneratedV1, meta: EventMeta, deps: Deps) -> None:
    """Screen the output and answer upstream: allow/redact → a completed response (redactions applied);
    block → a blocked response; review → a queued review, ReviewRequestedV1 and a blocked response."""
    now = datetime.now(UTC)
    common: dict[str, Any] = {
        "request_id": event.request_id,
        "tenant": event.tenant,
        "model": event.model,
        "model_version": event.model_version,
        "adapter": event.adapter,
        "usage": event.usage,
        "prompt_name": event.prompt_name,
        "prompt_version": event.prompt_version,
        "completed_at": now,
    }
    policy = await _policy_or_fail(deps, OUTPUT_CONSUMER, meta, common)
    if policy is None:
        return
    screening = await deps.screener.screen_output(event, policy)
    decision = screening.decision
    review: ReviewItem | None = None
    out: list[Event]
    if decision.verdict in (Verdict.ALLOW, Verdict.REDACT):
        out = [
            ResponseCompletedV1(
                status=ResponseStatus.COMPLETED,
                text=screening.text,
                citations=event.chunks,
                verdict=decision.verdict,
                findings=decision.findings,
                **common,
            )
        ]
    else:
        out, review = _refusal(decision, meta, {**common, "text": None}, screening.review_text)
    if await _publish_once(deps, OUTPUT_CONSUMER, meta, out, review):
        _count(decision)
        _log_verdict("output screened", decision)
