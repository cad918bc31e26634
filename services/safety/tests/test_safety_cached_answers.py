"""An answer inference's response cache gave: screened like any other, and its response (and a held
one's release) says what the cache did, and how inference's routing policy chose the model."""

from __future__ import annotations

from typing import Any

import pytest

from cairn_events import (
    CacheOutcome,
    CompletionGeneratedV1,
    ResponseCompletedV1,
    ResponseStatus,
    ReviewDecision,
    ReviewRequestedV1,
    RouteAttempt,
    RouteDecision,
    Verdict,
)
from cairn_safety.bootstrap import Deps
from cairn_safety.decisions import announcer
from cairn_testing import schema_examples

HIT = CacheOutcome(result="hit", kind="exact", source_request_id="req-earlier")
ROUTE = RouteDecision(
    policy="default",
    policy_version=2,
    rule="batch-work",
    chain=["cairn-qa-int8", "cairn-qa"],
    fallbacks=[RouteAttempt(model="cairn-qa-int8", reason="generation timed out after 2 s")],
)


def cached(text: str, cache: CacheOutcome = HIT) -> CompletionGeneratedV1:
    [found] = schema_examples(CompletionGeneratedV1.event_type)
    base = found.event()
    assert isinstance(base, CompletionGeneratedV1)
    return base.model_copy(update={"text": text, "cache": cache, "route": ROUTE})


def responses(deps: Deps) -> list[ResponseCompletedV1]:
    return [m.event for m in deps.publisher.messages if isinstance(m.event, ResponseCompletedV1)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "status", "verdict", "answer"),
    [
        ("Refunds take 5 days.", ResponseStatus.COMPLETED, Verdict.ALLOW, "Refunds take 5 days."),
        ("Mail jane@acme.example.", ResponseStatus.COMPLETED, Verdict.REDACT, "Mail [EMAIL]."),
        ("Only an idiot would ask that.", ResponseStatus.BLOCKED, Verdict.BLOCK, None),
    ],
    ids=["completed", "redacted", "blocked"],
)
async def test_a_cached_answer_is_screened_and_its_response_keeps_the_cache_outcome(
    upstream: Any,
    deps: Deps,
    classifier: Any,
    text: str,
    status: ResponseStatus,
    verdict: Verdict,
    answer: str | None,
) -> None:
    await upstream.deliver(upstream.record(cached(text)))
    [response] = responses(deps)
    assert (response.status, response.verdict, response.text) == (status, verdict, answer)
    assert response.cache == HIT
    assert response.route == ROUTE
    assert [text] in classifier.calls  # a hit is screened under today's policy, not trusted


@pytest.mark.parametrize(
    "cache",
    [CacheOutcome(result="miss", kind="exact"), CacheOutcome(result="bypass", reason="not deterministic")],
    ids=["miss", "bypass"],
)
async def test_a_miss_or_bypass_is_carried_too(upstream: Any, deps: Deps, cache: CacheOutcome) -> None:
    await upstream.deliver(upstream.record(cached("Refunds take 5 days.", cache)))
    [response] = responses(deps)
    assert response.cache == cache


async def test_a_completion_without_cache_outcome_answers_without_one(upstream: Any, deps: Deps) -> None:
    await upstream.deliver(upstream.record(cached("Refunds take 5 days.").model_copy(update={"cache": None})))
    [response] = responses(deps)
    assert response.cache is None


@pytest.mark.parametrize(
    ("decision", "kwargs", "status"),
    [
        (ReviewDecision.APPROVE, {}, ResponseStatus.COMPLETED),
        (ReviewDecision.EDIT, {"text": "Refunds take 5 days."}, ResponseStatus.COMPLETED),
        (ReviewDecision.REJECT, {"note": "rude"}, ResponseStatus.BLOCKED),
    ],
    ids=["approve", "edit", "reject"],
)
async def test_a_held_cached_answer_keeps_the_cache_outcome_when_released(
    upstream: Any, deps: Deps, decision: ReviewDecision, kwargs: dict[str, Any], status: ResponseStatus
) -> None:
    await upstream.deliver(upstream.record(cached("What the heck, refunds take 5 days.")))
    [held] = responses(deps)
    assert (held.status, held.cache) == (ResponseStatus.HELD, HIT)
    [requested] = [m.event for m in deps.publisher.messages if isinstance(m.event, ReviewRequestedV1)]  # type: ignore[attr-defined]
    await deps.reviews.resolve(
        requested.review_id, decision, resolved_by="key-ann", then=announcer(deps.publisher), **kwargs
    )
    resolved = deps.publisher.messages[-1]  # type: ignore[attr-defined]
    await upstream.deliver(resolved)
    answer = responses(deps)[-1]
    assert (answer.status, answer.cache, answer.route) == (status, HIT, ROUTE)
