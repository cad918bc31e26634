"""A held request answered by its review's decision: approve, edit, reject and the deadline, through the
service's real router and dispatcher with in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn_auth.encryption import ERASED
from cairn_bus import Outcome, derive_event_id
from cairn_bus.publisher import OutgoingMessage
from cairn_events import (
    ChatMessage,
    CompletionGeneratedV1,
    ContextAssembledV1,
    InputScreenedV1,
    ResponseCompletedV1,
    ResponseStatus,
    ReviewDecision,
    ReviewRequestedV1,
    ReviewResolvedV1,
    Verdict,
)
from cairn_safety.adapters.memory import InMemoryReviewQueue
from cairn_safety.bootstrap import Deps
from cairn_safety.decisions import announcer, decision_event_id, sweep_deadlines
from cairn_safety.domain.reviews import ERASED_REASON, ReviewItem, ReviewStatus
from cairn_safety.metrics import SAFETY_REVIEWS_RESOLVED
from cairn_testing import schema_examples


def example(cls: type[Any]) -> Any:
    [found] = schema_examples(cls.event_type)
    return found.event()


def messages(deps: Deps, cls: type[Any]) -> list[OutgoingMessage]:
    return [m for m in deps.publisher.messages if isinstance(m.event, cls)]  # type: ignore[attr-defined]


async def hold_output(
    upstream: Any, deps: Deps, text: str = "What the heck, refunds take 5 days."
) -> ReviewItem:
    base: CompletionGeneratedV1 = example(CompletionGeneratedV1)
    await upstream.deliver(upstream.record(base.model_copy(update={"text": text})))
    [requested] = messages(deps, ReviewRequestedV1)
    item = await deps.reviews.get(requested.event.review_id)  # type: ignore[union-attr]
    assert item is not None
    return item


async def hold_input(upstream: Any, deps: Deps, tenant: str = "acme-support") -> ReviewItem:
    base: ContextAssembledV1 = example(ContextAssembledV1)
    turns = [base.messages[0], ChatMessage(role="user", content="What the heck, mail me at bob@example.com")]
    await upstream.deliver(upstream.record(base.model_copy(update={"messages": turns, "tenant": tenant})))
    [requested] = messages(deps, ReviewRequestedV1)
    item = await deps.reviews.get(requested.event.review_id)  # type: ignore[union-attr]
    assert item is not None
    return item


async def decide(
    upstream: Any, deps: Deps, item: ReviewItem, decision: ReviewDecision, **kwargs: Any
) -> tuple[OutgoingMessage, list[OutgoingMessage]]:
    """Decide as the API does (publishing the decision), then deliver the decision to the service; the
    decision's message and what the service published for it."""
    await deps.reviews.resolve(
        item.review_id,
        decision,
        resolved_by=kwargs.pop("by", "key-ann"),
        then=announcer(deps.publisher),
        **kwargs,
    )
    return await deliver_decision(upstream, deps)


async def deliver_decision(upstream: Any, deps: Deps) -> tuple[OutgoingMessage, list[OutgoingMessage]]:
    [resolved] = messages(deps, ReviewResolvedV1)
    before = len(deps.publisher.messages)  # type: ignore[attr-defined]
    assert await upstream.deliver(resolved) is Outcome.HANDLED
    return resolved, deps.publisher.messages[before:]  # type: ignore[attr-defined]


def resolved_count(stage: str, decision: str, by: str) -> float:
    return SAFETY_REVIEWS_RESOLVED.labels(stage, decision, by)._value.get()  # type: ignore[no-any-return]


async def test_an_approved_output_releases_the_held_answer(upstream: Any, deps: Deps) -> None:
    item = await hold_output(upstream, deps)
    [held] = [m.event for m in messages(deps, ResponseCompletedV1)]
    assert held.status is ResponseStatus.HELD
    counted = resolved_count("output", "approve", "reviewer")
    resolved, out = await decide(upstream, deps, item, ReviewDecision.APPROVE, note="fine")
    decision = resolved.event
    assert isinstance(decision, ReviewResolvedV1)
    assert (decision.decision, decision.decided_by, decision.by_deadline, decision.reason, decision.text) == (
        ReviewDecision.APPROVE,
        "key-ann",
        False,
        "fine",
        None,
    )
    # the decision joins the request's trail under the review request, with an id fixed by the review
    [requested] = messages(deps, ReviewRequestedV1)
    assert resolved.meta.id == decision_event_id(item.review_id)
    assert resolved.meta.causation_id == requested.meta.id
    assert resolved.meta.correlation_id == requested.meta.correlation_id
    assert resolved.meta.subject == item.request_id
    assert resolved.topic == "cairn.reviews"
    [answer] = out
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.text, response.verdict) == (
        ResponseStatus.COMPLETED,
        "What the heck, refunds take 5 days.",
        Verdict.REVIEW,
    )
    base: CompletionGeneratedV1 = example(CompletionGeneratedV1)
    assert response.citations == base.chunks
    assert (response.model, response.model_version, response.adapter, response.usage) == (
        base.model,
        base.model_version,
        base.adapter,
        base.usage,
    )
    assert answer.meta.id == derive_event_id(resolved.meta.id, ResponseCompletedV1.event_type)
    assert answer.meta.causation_id == resolved.meta.id
    assert resolved_count("output", "approve", "reviewer") == counted + 1
    # a redelivered decision publishes nothing more
    assert await upstream.deliver(resolved) is Outcome.HANDLED
    assert deps.publisher.messages[-1] is answer  # type: ignore[attr-defined]
    assert resolved_count("output", "approve", "reviewer") == counted + 1


async def test_an_edited_output_is_screened_again_and_released(upstream: Any, deps: Deps) -> None:
    item = await hold_output(upstream, deps)
    text = "Refunds take 5 days; mail refunds@acme.example."
    resolved, [answer] = await decide(upstream, deps, item, ReviewDecision.EDIT, text=text)
    assert resolved.event.text == text  # type: ignore[union-attr]
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.verdict) == (ResponseStatus.COMPLETED, Verdict.REDACT)
    assert response.text == "Refunds take 5 days; mail [EMAIL]."  # the output policy applies to edits too
    assert response.model == "support-assistant"
    assert (await deps.reviews.get(item.review_id)).status is ReviewStatus.EDITED  # type: ignore[union-attr]


async def test_an_edit_that_fails_screening_is_blocked(upstream: Any, deps: Deps) -> None:
    item = await hold_output(upstream, deps)
    _, [answer] = await decide(upstream, deps, item, ReviewDecision.EDIT, text="Only an idiot asks that.")
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.text, response.verdict) == (ResponseStatus.BLOCKED, None, Verdict.BLOCK)
    assert response.reason is not None
    assert response.reason.startswith("the reviewer's edit did not pass screening: output blocked")


async def test_a_rejected_output_is_blocked_with_the_reviewers_reason(upstream: Any, deps: Deps) -> None:
    item = await hold_output(upstream, deps)
    _, [answer] = await decide(upstream, deps, item, ReviewDecision.REJECT, note="rude tone")
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.text, response.reason) == (
        ResponseStatus.BLOCKED,
        None,
        "rejected in human review: rude tone",
    )
    assert response.findings == item.findings
    assert response.usage is not None  # the generation ran and cost tokens


async def test_an_approved_input_goes_on_to_the_model(upstream: Any, deps: Deps) -> None:
    item = await hold_input(upstream, deps)
    _, [answer] = await decide(upstream, deps, item, ReviewDecision.APPROVE)
    screened = answer.event
    assert isinstance(screened, InputScreenedV1)
    assert answer.topic == "cairn.screenings"
    assert screened.verdict is Verdict.REDACT
    assert screened.messages[-1].content == "What the heck, mail me at [EMAIL]"
    base: ContextAssembledV1 = example(ContextAssembledV1)
    assert (screened.chunks, screened.params, screened.model) == (base.chunks, base.params, base.model)
    assert screened.policy == "default@1"


async def test_an_edited_input_answers_with_the_reviewers_text(upstream: Any, deps: Deps) -> None:
    item = await hold_input(upstream, deps)
    _, [answer] = await decide(upstream, deps, item, ReviewDecision.EDIT, text="Please write to support.")
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.text, response.model, response.citations) == (
        ResponseStatus.COMPLETED,
        "Please write to support.",
        None,
        [],
    )
    assert (response.prompt_name, response.prompt_version) == ("support-answer", 7)


async def test_a_rejected_input_is_blocked(upstream: Any, deps: Deps) -> None:
    item = await hold_input(upstream, deps)
    _, [answer] = await decide(upstream, deps, item, ReviewDecision.REJECT)
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.reason, response.model) == (
        ResponseStatus.BLOCKED,
        "rejected in human review",
        None,
    )


async def test_an_overdue_review_takes_the_default_reject(upstream: Any, deps: Deps) -> None:
    item = await hold_output(upstream, deps)
    assert item.deadline_at is not None
    assert (
        await sweep_deadlines(deps.reviews, deps.publisher, now=item.deadline_at - timedelta(seconds=1)) == []
    )
    counted = resolved_count("output", "reject", "deadline")
    [done] = await sweep_deadlines(deps.reviews, deps.publisher, now=item.deadline_at)
    assert (done.status, done.resolved_by) == (ReviewStatus.REJECTED, "deadline")
    resolved, [answer] = await deliver_decision(upstream, deps)
    decision = resolved.event
    assert isinstance(decision, ReviewResolvedV1)
    assert (decision.decided_by, decision.by_deadline, decision.decision) == (
        "deadline",
        True,
        ReviewDecision.REJECT,
    )
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert response.status is ResponseStatus.BLOCKED
    assert response.reason == (
        "rejected in human review: no decision by the deadline; policy default@1 defaults to reject"
    )
    assert resolved_count("output", "reject", "deadline") == counted + 1
    assert (
        await sweep_deadlines(deps.reviews, deps.publisher, now=item.deadline_at + timedelta(hours=1)) == []
    )


async def test_a_policy_may_approve_at_its_deadline(upstream: Any, deps: Deps, policy_dir: Path) -> None:
    default = yaml.safe_load((policy_dir / "default.yaml").read_text(encoding="utf-8"))
    lenient = {**default, "name": "lenient", "review": {"deadline_s": 60, "on_deadline": "approve"}}
    (policy_dir / "lenient.yaml").write_text(yaml.safe_dump(lenient), encoding="utf-8")
    item = await hold_input(upstream, deps, tenant="lenient")
    assert (item.deadline_at - item.created_at, item.on_deadline) == (  # type: ignore[operator]
        timedelta(seconds=60),
        ReviewDecision.APPROVE,
    )
    await sweep_deadlines(deps.reviews, deps.publisher, now=datetime.now(UTC) + timedelta(seconds=61))
    _, [answer] = await deliver_decision(upstream, deps)
    assert isinstance(answer.event, InputScreenedV1)  # the request goes on to the model


async def test_a_decision_on_a_review_not_in_the_queue_is_not_answered(upstream: Any, deps: Deps) -> None:
    """Another deployment's decision (its queue, its database) on the same broker is not this one's."""
    decision = ReviewResolvedV1(
        review_id="rev-elsewhere",
        request_id="req-elsewhere",
        tenant="acme-support",
        stage="output",
        decision=ReviewDecision.APPROVE,
        decided_by="key-ann",
        decided_at=datetime.now(UTC),
    )
    assert await upstream.deliver(upstream.record(decision)) is Outcome.HANDLED
    assert deps.publisher.messages == []  # type: ignore[attr-defined]


async def test_an_edit_the_policy_would_hold_is_released_a_reviewer_wrote_it(
    upstream: Any, deps: Deps
) -> None:
    item = await hold_output(upstream, deps)
    text = "What the heck: refunds take 5 days, card 4111 1111 1111 1111."
    _, [answer] = await decide(upstream, deps, item, ReviewDecision.EDIT, text=text)
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.verdict) == (ResponseStatus.COMPLETED, Verdict.REVIEW)
    assert response.text == "What the heck: refunds take 5 days, card [CARD_NUMBER]."


@pytest.mark.parametrize("decision", [ReviewDecision.APPROVE, ReviewDecision.REJECT])
async def test_a_publish_that_fails_keeps_the_review_pending(
    upstream: Any, deps: Deps, decision: ReviewDecision
) -> None:
    item = await hold_output(upstream, deps)

    async def broker_down(message: OutgoingMessage) -> None:
        raise ConnectionError("broker went away")

    deps.publisher.send = broker_down  # type: ignore[attr-defined]
    with pytest.raises(ConnectionError):
        await deps.reviews.resolve(
            item.review_id, decision, resolved_by="key-ann", then=announcer(deps.publisher)
        )
    assert (await deps.reviews.get(item.review_id)).status is ReviewStatus.PENDING  # type: ignore[union-attr]


async def test_a_shadow_request_the_policy_would_hold_is_answered_blocked_and_never_queued(
    upstream: Any, deps: Deps
) -> None:
    from cairn_safety.handlers import SHADOW_REVIEW_REASON

    base: CompletionGeneratedV1 = example(CompletionGeneratedV1)
    shadow = upstream.publisher.build(
        base.model_copy(update={"text": "What the heck, refunds take 5 days."}),
        replay_id="shadow:s1",
        replay_of="evt-live-1",
    )
    assert await upstream.deliver(shadow) is Outcome.HANDLED
    assert messages(deps, ReviewRequestedV1) == []  # no reviewer sees shadow traffic
    assert await deps.reviews.items() == []
    [answer] = messages(deps, ResponseCompletedV1)
    response = answer.event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.verdict, response.reason) == (
        ResponseStatus.BLOCKED,
        Verdict.REVIEW,
        SHADOW_REVIEW_REASON,
    )
    assert answer.topic == "cairn.responses.shadow"  # never upstream's cairn.responses
    assert answer.meta.replay_id == "shadow:s1"


# --- the tenant erased while its request was held ------------------------------------------------


def erase(deps: Deps, tenant: str) -> None:
    """What destroying the tenant's key does to the queue (see the PostgreSQL tests for the real one)."""
    assert isinstance(deps.reviews, InMemoryReviewQueue)
    assert deps.reviews.erase(tenant) == 1


def blocked_as_erased(answer: OutgoingMessage, item: ReviewItem) -> None:
    response = answer.event
    assert isinstance(response, ResponseCompletedV1), "nothing is released: no InputScreenedV1 either"
    assert (response.status, response.reason, response.text, response.verdict) == (
        ResponseStatus.BLOCKED,
        ERASED_REASON,
        None,
        Verdict.REVIEW,
    )
    assert response.request_id == item.request_id
    assert ERASED not in answer.value.decode()


@pytest.mark.parametrize(
    ("decision", "kwargs"),
    [(ReviewDecision.APPROVE, {}), (ReviewDecision.EDIT, {"text": "Refunds take 5 days."})],
)
async def test_an_erased_tenants_held_output_is_never_released(
    upstream: Any, deps: Deps, decision: ReviewDecision, kwargs: dict[str, Any]
) -> None:
    item = await hold_output(upstream, deps)
    erase(deps, item.tenant)
    listed = await deps.reviews.items()
    assert [(i.text, i.erased) for i in listed] == [(ERASED, True)]
    resolved, [answer] = await decide(upstream, deps, item, decision, **kwargs)
    assert resolved.event.decision is decision  # type: ignore[union-attr]
    blocked_as_erased(answer, item)


async def test_an_erased_tenants_rejected_item_is_blocked_as_rejected(upstream: Any, deps: Deps) -> None:
    item = await hold_output(upstream, deps)
    erase(deps, item.tenant)
    _, [answer] = await decide(upstream, deps, item, ReviewDecision.REJECT, note="spam")
    assert answer.event.status is ResponseStatus.BLOCKED  # type: ignore[union-attr]
    assert answer.event.reason == "rejected in human review: spam"  # type: ignore[union-attr]


async def test_a_deadline_approval_does_not_release_an_erased_tenants_input(
    upstream: Any, deps: Deps, policy_dir: Path
) -> None:
    default = yaml.safe_load((policy_dir / "default.yaml").read_text(encoding="utf-8"))
    lenient = {**default, "name": "lenient", "review": {"deadline_s": 60, "on_deadline": "approve"}}
    (policy_dir / "lenient.yaml").write_text(yaml.safe_dump(lenient), encoding="utf-8")
    item = await hold_input(upstream, deps, tenant="lenient")
    erase(deps, "lenient")
    [done] = await sweep_deadlines(
        deps.reviews, deps.publisher, now=datetime.now(UTC) + timedelta(seconds=61)
    )
    assert (done.status, done.erased) == (ReviewStatus.APPROVED, True)
    resolved, [answer] = await deliver_decision(upstream, deps)
    # the decision still joins the request's trail: the envelope is not the tenant's content
    [requested] = messages(deps, ReviewRequestedV1)
    assert resolved.meta.correlation_id == requested.meta.correlation_id
    blocked_as_erased(answer, item)
