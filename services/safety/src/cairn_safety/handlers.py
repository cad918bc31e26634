"""The safety handlers: screen a request's input before inference and the model's output after it,
and answer a held request once its review is decided.

Each handled event is claimed in the PostgreSQL inbox in the same transaction as the review item
it may queue, and its events are published before that transaction commits: a redelivered event
finds its claim and publishes nothing; a crash before the commit leaves it unclaimed, and the
retry publishes events with the same derived ids (which consumers recognise).

A held request is answered `held` (not final) and its review item keeps what the release needs:
the would-be completed response (output) or the screened conversation (input). The decision
(`cairn.review.resolved.v1`) then answers it: approve releases the held answer (or lets the input
go on to the model), edit releases the reviewer's text screened again under the tenant's output
policy (for a held input too: the reviewer's text is the answer), reject answers `blocked`. A held
request whose tenant was erased before the release is answered `blocked` whatever was decided: its
held answer is gone, and nothing else is released for it.

A tenant's erasure (`tenant.erase` on `cairn.admin`) destroys the service's key for the tenant: the
review items' text, notes and held answers can never be read again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn_auth.encryption import TENANT_ERASE
from cairn_bus import EventMeta
from cairn_events import (
    AdminActionRecordedV1,
    ChatMessage,
    CompletionGeneratedV1,
    ContextAssembledV1,
    Event,
    InputScreenedV1,
    ResponseCompletedV1,
    ResponseStatus,
    ReviewDecision,
    ReviewRequestedV1,
    ReviewResolvedV1,
    Verdict,
)
from cairn_observability import get_logger, record_request_outcome
from cairn_safety.bootstrap import Deps
from cairn_safety.decisions import envelope_of
from cairn_safety.domain.pii import find_pii, redact
from cairn_safety.domain.policy import Policy, PolicyError, Stage
from cairn_safety.domain.reviews import ERASED_REASON, ReviewItem, review_id_for
from cairn_safety.domain.verdicts import Decision
from cairn_safety.metrics import SAFETY_CHECKS_FIRED, SAFETY_VERDICTS, record_decision, record_grounding

__all__ = [
    "INPUT_CONSUMER",
    "OUTPUT_CONSUMER",
    "REVIEW_CONSUMER",
    "REVIEW_REASON",
    "SHADOW_REVIEW_REASON",
    "held_reason",
    "on_admin_action",
    "on_completion_generated",
    "on_context_assembled",
    "on_review_resolved",
]

INPUT_CONSUMER = "safety.on_context_assembled"
"""The inbox consumer name of input screening."""
OUTPUT_CONSUMER = "safety.on_completion_generated"
"""The inbox consumer name of output screening."""
REVIEW_CONSUMER = "safety.on_review_resolved"
"""The inbox consumer name of review decisions."""
REVIEW_REASON = "held for human review"
"""How the reason of a `held` response begins."""
SHADOW_REVIEW_REASON = (
    "would be held for human review; a replay or shadow request is not queued for a reviewer"
)
"""The reason of the `blocked` answer to a replayed or shadow request whose screening asked for review."""

log = get_logger("cairn.safety")


def held_reason(review_id: str) -> str:
    """The reason of the `held` response of a request waiting for review `review_id`."""
    return f"{REVIEW_REASON} (review {review_id}); the final answer follows"


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
        if isinstance(event, ResponseCompletedV1) and event.status is not ResponseStatus.HELD:  # it ends here
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
    decision: Decision,
    meta: EventMeta,
    fields: dict[str, Any],
    text: str,
    policy: Policy,
    release: dict[str, Any],
) -> tuple[ReviewItem, ReviewRequestedV1]:
    stage: Stage = decision.stage
    now: datetime = fields["completed_at"]
    item = ReviewItem(
        review_id=review_id_for(meta.id, stage),
        request_id=fields["request_id"],
        tenant=fields["tenant"],
        stage=stage,
        verdict=decision.verdict,
        findings=decision.findings,
        text=text,
        policy=decision.policy,
        event_id=meta.id,
        created_at=now,
        release={**release, "envelope": envelope_of(meta)},
        deadline_at=now + timedelta(seconds=policy.review.deadline_s),
        on_deadline=ReviewDecision(policy.review.on_deadline),
    )
    event = ReviewRequestedV1(
        review_id=item.review_id,
        request_id=item.request_id,
        tenant=item.tenant,
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
    decision: Decision,
    meta: EventMeta,
    fields: dict[str, Any],
    review_text: str,
    policy: Policy,
    release: dict[str, Any],
) -> tuple[list[Event], ReviewItem | None]:
    """What a block or review answers: a blocked response; for review a queued item (keeping
    `release`), announced first, and a `held` response naming it.

    A replayed or shadow request (`meta.replay_id` set) is never queued for a person: its review
    verdict is answered `blocked` at once (verdict `review`, reason `SHADOW_REVIEW_REASON`), on the
    shadow topic like the rest of its trail, so a replay's diff and a shadow's pairs get a final answer."""
    if decision.verdict is not Verdict.REVIEW or meta.replay_id is not None:
        blocked = ResponseCompletedV1(
            status=ResponseStatus.BLOCKED,
            reason=decision.reason() if decision.verdict is not Verdict.REVIEW else SHADOW_REVIEW_REASON,
            verdict=decision.verdict,
            findings=decision.findings,
            **fields,
        )
        return [blocked], None
    review, requested = _review(decision, meta, fields, review_text, policy, release)
    held = ResponseCompletedV1(
        status=ResponseStatus.HELD,
        reason=held_reason(review.review_id),
        verdict=decision.verdict,
        findings=decision.findings,
        **fields,
    )
    return [requested, held], review


def _redacted_turns(messages: Sequence[ChatMessage], decision: Decision, policy: Policy) -> list[ChatMessage]:
    """The conversation with the personal data that fired redacted in the user's turns (what an
    `allow`/`redact` verdict would have passed on)."""
    if not decision.redact_kinds:
        return list(messages)
    kinds = policy.input.pii.kinds
    return [
        ChatMessage(role="user", content=redact(m.content, find_pii(m.content, kinds), decision.redact_kinds))
        if m.role == "user"
        else m
        for m in messages
    ]


async def on_context_assembled(event: ContextAssembledV1, meta: EventMeta, deps: Deps) -> None:
    """Screen the input: allow/redact → InputScreenedV1; block → a blocked response; review → a queued
    review (keeping the screened conversation), ReviewRequestedV1 and a `held` response."""
    now = datetime.now(UTC)
    prompt: dict[str, Any] = {"prompt_name": event.prompt_name, "prompt_version": event.prompt_version}
    fields = {"request_id": event.request_id, "tenant": event.tenant, "completed_at": now, **prompt}
    policy = await _policy_or_fail(deps, INPUT_CONSUMER, meta, fields)
    if policy is None:
        return
    screening = await deps.screener.screen_input(event, policy)
    decision = screening.decision

    def screened(verdict: Verdict, messages: list[ChatMessage]) -> InputScreenedV1:
        return InputScreenedV1(
            request_id=event.request_id,
            tenant=event.tenant,
            verdict=verdict,
            findings=decision.findings,
            policy=decision.policy,
            messages=messages,
            chunks=event.chunks,
            params=event.params,
            model=event.model,
            screened_at=now,
            **prompt,
        )

    review: ReviewItem | None = None
    out: list[Event]
    if decision.verdict in (Verdict.ALLOW, Verdict.REDACT):
        out = [screened(decision.verdict, screening.messages)]
    else:
        on_approve = screened(
            Verdict.REDACT if decision.redact_kinds else Verdict.ALLOW,
            _redacted_turns(event.messages, decision, policy),
        )
        release = {"screened": on_approve.model_dump(mode="json")}
        out, review = _refusal(decision, meta, fields, screening.review_text, policy, release)
    if await _publish_once(deps, INPUT_CONSUMER, meta, out, review):
        _count(decision)
        _log_verdict("input screened", decision)


async def on_completion_generated(event: CompletionGeneratedV1, meta: EventMeta, deps: Deps) -> None:
    """Screen the output and answer upstream: allow/redact → a completed response (redactions applied);
    block → a blocked response; review → a queued review (keeping the would-be completed response),
    ReviewRequestedV1 and a `held` response."""
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
        "cache": event.cache,  # a cache hit is screened like any answer, and says it was one
        "route": event.route,  # which model the routing policy chose, and the ones that failed first
    }
    policy = await _policy_or_fail(deps, OUTPUT_CONSUMER, meta, common)
    if policy is None:
        return
    screening = await deps.screener.screen_output(event, policy)
    decision = screening.decision

    def completed(text: str) -> ResponseCompletedV1:
        return ResponseCompletedV1(
            status=ResponseStatus.COMPLETED,
            text=text,
            citations=event.chunks,
            verdict=decision.verdict,
            findings=decision.findings,
            **common,
        )

    review: ReviewItem | None = None
    out: list[Event]
    if decision.verdict in (Verdict.ALLOW, Verdict.REDACT):
        out = [completed(screening.text)]
    else:
        release = {"response": completed(screening.review_text).model_dump(mode="json")}
        out, review = _refusal(
            decision, meta, {**common, "text": None}, screening.review_text, policy, release
        )
    if await _publish_once(deps, OUTPUT_CONSUMER, meta, out, review):
        _count(decision)
        if screening.grounding is not None:  # counted once, like the verdict: not on a redelivery
            record_grounding(decision.policy, screening.grounding.score, screening.grounding.action)
        _log_verdict("output screened", decision)


# --- a review decided: answer the held request ---------------------------------------------------------


def _answer_fields(event: ReviewResolvedV1, item: ReviewItem, now: datetime) -> dict[str, Any]:
    """The fields of the request's final response that the held one had: prompt, and for a held
    output the model that generated, the tokens it cost, what the response cache did and the route."""
    fields: dict[str, Any] = {"request_id": event.request_id, "tenant": event.tenant, "completed_at": now}
    release = item.release
    if "response" in release:
        held = ResponseCompletedV1.model_validate(release["response"])
        kept = (
            "model",
            "model_version",
            "adapter",
            "usage",
            "prompt_name",
            "prompt_version",
            "cache",
            "route",
        )
        for name in kept:
            fields[name] = getattr(held, name)
    elif "screened" in release:
        screened = InputScreenedV1.model_validate(release["screened"])
        fields.update(prompt_name=screened.prompt_name, prompt_version=screened.prompt_version)
    return fields


async def _edited(
    event: ReviewResolvedV1, item: ReviewItem, fields: dict[str, Any], deps: Deps
) -> ResponseCompletedV1:
    """The reviewer's text as the answer, screened again under the tenant's output policy: blocked when
    the policy blocks it; otherwise released with the personal data that fired redacted (a `review`
    verdict passes, since a reviewer wrote the text)."""
    text = (event.text or "").strip()
    if not text:
        return ResponseCompletedV1(status=ResponseStatus.FAILED, reason="an edit without text", **fields)
    try:
        policy = deps.policies.policy_for(event.tenant)
    except PolicyError as exc:
        log.error("no valid safety policy; edit not released", tenant=event.tenant, error=str(exc))
        reason = f"no valid safety policy for tenant {event.tenant!r}"
        return ResponseCompletedV1(status=ResponseStatus.FAILED, reason=reason, **fields)
    screening = await deps.screener.screen("output", policy, [text])
    decision = screening.decision
    if decision.verdict is Verdict.BLOCK:  # `review` passes: a reviewer wrote it
        return ResponseCompletedV1(
            status=ResponseStatus.BLOCKED,
            reason=f"the reviewer's edit did not pass screening: {decision.reason()}",
            verdict=decision.verdict,
            findings=decision.findings,
            **fields,
        )
    citations = []
    if "response" in item.release:
        citations = ResponseCompletedV1.model_validate(item.release["response"]).citations
    return ResponseCompletedV1(
        status=ResponseStatus.COMPLETED,
        text=screening.redacted[0],  # the personal data that fired redacted, whatever the verdict
        citations=citations,
        verdict=decision.verdict,
        findings=decision.findings,
        **fields,
    )


async def _release(event: ReviewResolvedV1, item: ReviewItem, deps: Deps, now: datetime) -> Event:
    """What answers the held request under `event`'s decision."""
    fields = _answer_fields(event, item, now)
    if item.erased and event.decision is not ReviewDecision.REJECT:
        return ResponseCompletedV1(
            status=ResponseStatus.BLOCKED,
            reason=ERASED_REASON,
            verdict=Verdict.REVIEW,
            findings=item.findings,
            **fields,
        )
    if event.decision is ReviewDecision.REJECT:
        reason = f"rejected in human review: {event.reason}" if event.reason else "rejected in human review"
        return ResponseCompletedV1(
            status=ResponseStatus.BLOCKED,
            reason=reason,
            verdict=Verdict.REVIEW,
            findings=item.findings,
            **fields,
        )
    if event.decision is ReviewDecision.EDIT:
        return await _edited(event, item, fields, deps)
    if "response" in item.release:
        return ResponseCompletedV1.model_validate({**item.release["response"], "completed_at": now})
    if "screened" in item.release:
        return InputScreenedV1.model_validate({**item.release["screened"], "screened_at": now})
    reason = f"review {event.review_id} was approved but keeps no held answer to release"
    return ResponseCompletedV1(status=ResponseStatus.FAILED, reason=reason, **fields)


async def on_review_resolved(event: ReviewResolvedV1, meta: EventMeta, deps: Deps) -> None:
    """Answer a held request as its review was decided: approve → the held answer as a completed
    response (a held input: InputScreenedV1, so the request goes on to the model); edit → the
    reviewer's text, screened again, as the answer; reject → a blocked response with the reason."""
    item = await deps.reviews.get(event.review_id)
    if item is None:  # not this queue's review (another deployment on the same broker): not ours to answer
        log.warning("decision on a review not in this queue; ignored", review_id=event.review_id)
        return
    answer = await _release(event, item, deps, datetime.now(UTC))
    if await _publish_once(deps, REVIEW_CONSUMER, meta, [answer]):
        record_decision(event)
        log.info(
            "held request answered",
            review_id=event.review_id,
            request_id=event.request_id,
            decision=event.decision.value,
            decided_by=event.decided_by,
            answer=answer.status.value if isinstance(answer, ResponseCompletedV1) else answer.event_type,
        )


# --- a tenant erased: destroy its key ---------------------------------------------------------------


async def on_admin_action(event: AdminActionRecordedV1, meta: EventMeta, deps: Deps) -> None:
    """A tenant's erasure (`tenant.erase`): destroy this service's key for the tenant (idempotent), so
    the text, notes and held answers of its review items can never be read again; a held request of
    the tenant is then answered `blocked` whatever is decided. Other actions are not this service's
    business."""
    if event.action != TENANT_ERASE:
        return
    if deps.keyring is None:
        log.warning(
            "tenant erasure asked, but no master key is configured: review items are not encrypted",
            tenant=event.target,
        )
        return
    destroyed = await deps.keyring.erase(event.target)
    log.info("tenant erased", tenant=event.target, keys_destroyed=destroyed)
