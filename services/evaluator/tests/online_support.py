"""Builders of live traffic for the online part's tests: requests, responses, feedback, renderings."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from cairn_bus import EventMeta
from cairn_evaluator.deps import Deps
from cairn_evaluator.handlers import (
    on_feedback_submitted,
    on_prompt_rendered,
    on_request_submitted,
    on_response_completed,
)
from cairn_events import (
    ChatMessage,
    ContextChunk,
    FeedbackSubmittedV1,
    GenerationParams,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
    TokenUsage,
    Verdict,
)

from .conftest import T0, meta

NOW = T0 + timedelta(days=8)

PYTHON = [
    "generators",
    "decorators",
    "list comprehensions",
    "context managers",
    "dataclasses",
    "asyncio tasks",
    "type hints",
    "virtual environments",
    "f-strings",
    "exceptions",
    "iterators",
    "lambda functions",
]
PYTHON_TEMPLATES = [
    "How do {t} work in Python?",
    "What is the best way to use {t} in Python code?",
    "Can you explain Python {t} with an example?",
    "Why would I use {t} in my Python program?",
]
COOKING = [
    "sourdough bread",
    "mushroom risotto",
    "banana pancakes",
    "roast chicken",
    "tomato soup",
    "chocolate cake",
    "vegetable curry",
    "apple pie",
]
COOKING_TEMPLATES = [
    "How long should I bake {t} in the oven?",
    "What temperature is best for cooking {t}?",
    "Which spices go well with {t} for dinner?",
    "How do I stop my {t} from burning?",
]


def questions(n: int, topics: list[str], templates: list[str], seed: int) -> list[str]:
    """n questions from templates and topics, chosen with a seeded generator."""
    rng = random.Random(seed)
    return [rng.choice(templates).format(t=rng.choice(topics)) for _ in range(n)]


def request(
    request_id: str,
    question: str,
    at: datetime,
    *,
    prompt: str = "support-qa@production",
    user_id: str | None = "u1",
    tenant: str = "default",
) -> RequestSubmittedV1:
    """A live request asking `question`."""
    return RequestSubmittedV1(
        request_id=request_id,
        tenant=tenant,
        prompt=prompt,
        variables={"question": question},
        user_id=user_id,
        submitted_at=at,
    )


def response(
    request_id: str,
    at: datetime,
    *,
    text: str | None = "Generators use yield to produce values lazily.",
    chunks: list[str] | None = None,
    status: ResponseStatus = ResponseStatus.COMPLETED,
    verdict: Verdict | None = None,
    tokens: tuple[int, int] = (120, 30),
    prompt_version: int = 1,
    model_version: str = "3",
    tenant: str = "default",
) -> ResponseCompletedV1:
    """A live response (completed unless `status` says otherwise) citing `chunks`."""
    completed = status is ResponseStatus.COMPLETED
    return ResponseCompletedV1(
        request_id=request_id,
        tenant=tenant,
        status=status,
        text=text if completed else None,
        reason=None if completed else "blocked by policy",
        citations=[
            ContextChunk(
                document_id=f"doc{i}",
                chunk_id=f"doc{i}#0",
                source_uri=f"file:///docs/{i}.md",
                content_hash=f"h{i}",
                score=0.8,
                text=c,
            )
            for i, c in enumerate(chunks or [])
        ],
        model="cairn-qa",
        model_version=model_version,
        usage=TokenUsage(input_tokens=tokens[0], output_tokens=tokens[1]),
        verdict=verdict,
        prompt_name="support-qa",
        prompt_version=prompt_version,
        completed_at=at,
    )


def feedback(
    request_id: str, at: datetime, *, rating: int | None = 4, thumbs: str | None = "up"
) -> FeedbackSubmittedV1:
    """A feedback on a live answer."""
    return FeedbackSubmittedV1.model_validate(
        {
            "feedback_id": f"fb-{request_id}",
            "request_id": request_id,
            "tenant": "default",
            "rating": rating,
            "thumbs": thumbs,
            "submitted_at": at,
        }
    )


def rendered(request_id: str, at: datetime, *, version: int, variant: str) -> PromptRenderedV1:
    """A rendering chosen by experiment `exp1`."""
    return PromptRenderedV1(
        request_id=request_id,
        tenant="default",
        prompt_name="support-qa",
        prompt_version=version,
        experiment="exp1",
        variant=variant,
        messages=[ChatMessage(role="user", content="How do generators work?")],
        params=GenerationParams(),
        rendered_at=at,
    )


async def deliver(deps: Deps, event: object, envelope: EventMeta | None = None) -> EventMeta:
    """Hand `event` to its handler; returns the envelope (to deliver it again)."""
    assert isinstance(
        event, RequestSubmittedV1 | ResponseCompletedV1 | FeedbackSubmittedV1 | PromptRenderedV1
    )
    m = envelope or meta(event)
    if isinstance(event, RequestSubmittedV1):
        await on_request_submitted(event, m, deps)
    elif isinstance(event, ResponseCompletedV1):
        await on_response_completed(event, m, deps)
    elif isinstance(event, FeedbackSubmittedV1):
        await on_feedback_submitted(event, m, deps)
    else:
        await on_prompt_rendered(event, m, deps)
    return m


async def traffic(
    deps: Deps,
    texts: list[str],
    start: datetime,
    span: timedelta,
    *,
    prefix: str,
    refusal_every: int = 0,
    tokens: tuple[int, int] = (120, 30),
) -> None:
    """One request and one response per text, spread evenly over [start, start + span)."""
    step = span / len(texts)
    for i, text in enumerate(texts):
        at = start + step * i
        rid = f"{prefix}-{i}"
        await deliver(deps, request(rid, text, at))
        refused = refusal_every and i % refusal_every == 0
        status = ResponseStatus.BLOCKED if refused else ResponseStatus.COMPLETED
        await deliver(deps, response(rid, at, status=status, tokens=(tokens[0] + i % 7, tokens[1] + i % 5)))
