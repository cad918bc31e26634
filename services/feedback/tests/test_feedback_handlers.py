"""The handlers through the real router and dispatcher, with the in-memory repository: any order, twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import Dispatcher, InMemoryPublisher, Outcome, RawRecord
from cairn_bus.objects import InMemoryObjectStore
from cairn_events import AdminActionRecordedV1, Event, ReviewDecision, ReviewResolvedV1
from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_feedback.app import router
from cairn_feedback.bootstrap import Deps, build
from cairn_feedback.domain.rules import parse_rules
from cairn_feedback.settings import Settings
from cairn_testing import schema_examples
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
CONSUMED = [
    "cairn.request.submitted.v1",
    "cairn.input.screened.v1",
    "cairn.response.completed.v1",
    "cairn.feedback.submitted.v1",
]


class Upstream:
    """Produces records as other services would and hands them to the feedback service's dispatcher."""

    def __init__(self, dispatcher: Dispatcher[Deps]) -> None:
        self.dispatcher = dispatcher
        self.publisher = InMemoryPublisher("/cairn/test")
        self.offset = 0

    async def deliver(self, event: Event, times: int = 1) -> list[Outcome]:
        message = self.publisher.build(event)
        outcomes = []
        for _ in range(times):  # a redelivery: the same record, same ce_id
            self.offset += 1
            record = RawRecord(
                message.topic, 0, self.offset, message.value, message.key, list(message.headers), 0
            )
            outcomes.append(await self.dispatcher.dispatch(record))
        return outcomes


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    publisher = InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types)
    async with build(
        Settings(), publisher, repository=InMemoryRepository(), objects=InMemoryObjectStore()
    ) as d:
        yield d


@pytest.fixture
def upstream(deps: Deps) -> Upstream:
    return Upstream(
        Dispatcher(router, deps, deps.publisher, group_id="cairn-feedback", max_attempts=1, retry_backoff_s=0)
    )


def test_the_router_declares_what_the_service_consumes_and_publishes() -> None:
    assert router.consumed_types == frozenset(
        [*CONSUMED, ReviewResolvedV1.event_type, AdminActionRecordedV1.event_type]
    )
    assert router.topics == [
        "cairn.admin",
        "cairn.feedback",
        "cairn.requests",
        "cairn.responses",
        "cairn.responses.shadow",  # the answers of replays: teacher answers for `teacher:` rules
        "cairn.reviews",
        "cairn.screenings",
    ]
    assert "cairn.dataset.published.v1" in router.published_types


@pytest.mark.parametrize("event_type", CONSUMED)
async def test_every_schema_example_is_stored(event_type: str, upstream: Upstream, deps: Deps) -> None:
    examples = schema_examples(event_type)
    assert examples
    for example in examples:
        event = example.event()
        assert await upstream.deliver(event, times=2) == [Outcome.HANDLED, Outcome.HANDLED]
        trail = await deps.repository.trail(event.request_id)  # type: ignore[attr-defined]
        stored = {
            "cairn.request.submitted.v1": trail.request,
            "cairn.input.screened.v1": trail.screening,
            "cairn.response.completed.v1": trail.response,
        }.get(event_type)
        if event_type == "cairn.feedback.submitted.v1":
            assert event in trail.feedback
        else:
            assert stored == event


@pytest.mark.parametrize("order", list(permutations(range(4))))
async def test_any_order_of_arrival_gives_the_same_trail(
    order: tuple[int, ...], upstream: Upstream, deps: Deps
) -> None:
    events = [*F.request_events("req-1"), F.feedback("fb-1", "req-1", rating=5)]
    for index in order:
        await upstream.deliver(events[index], times=2)
    trail = await deps.repository.trail("req-1")
    assert (trail.request, trail.screening, trail.response, trail.feedback) == (
        events[0],
        events[1],
        events[2],
        (events[3],),
    )
    assert deps.publisher.events() == []  # type: ignore[attr-defined]


async def test_a_feedback_id_seen_before_changes_nothing(upstream: Upstream, deps: Deps) -> None:
    await upstream.deliver(F.feedback("fb-1", "req-1", rating=5))
    await upstream.deliver(F.feedback("fb-1", "req-1", rating=1, corrected_answer="forged"))
    assert (await deps.repository.trail("req-1")).feedback == (F.feedback("fb-1", "req-1", rating=5),)


async def test_an_outage_fails_the_handler_and_leaves_the_record_for_retry(
    upstream: Upstream, deps: Deps
) -> None:
    repository = deps.repository
    assert isinstance(repository, InMemoryRepository)
    from cairn_bus import TransientError

    repository.fail_with = TransientError("database unavailable")
    with pytest.raises(TransientError):
        await upstream.deliver(F.request("req-1"))
    repository.fail_with = None
    assert await upstream.deliver(F.request("req-1")) == [Outcome.HANDLED]
    assert (await repository.trail("req-1")).request == F.request("req-1")


# --- a reviewer's decision on a held answer is feedback --------------------------------------------------


def decision(decision: ReviewDecision, **fields: Any) -> ReviewResolvedV1:
    [edited] = [e for e in schema_examples(ReviewResolvedV1.event_type) if e.payload["decision"] == "edit"]
    base = edited.event()
    assert isinstance(base, ReviewResolvedV1)
    return base.model_copy(update={"decision": decision, **fields})


async def test_an_edit_is_a_correction_tagged_as_a_review(upstream: Upstream, deps: Deps) -> None:
    event = decision(ReviewDecision.EDIT)
    await upstream.deliver(F.response(event.request_id))
    assert await upstream.deliver(event, times=2) == [Outcome.HANDLED, Outcome.HANDLED]
    [stored] = (await deps.repository.trail(event.request_id)).feedback
    assert stored.feedback_id == f"review:{event.review_id}"
    assert (stored.corrected_answer, stored.comment, stored.thumbs) == (event.text, event.reason, None)
    assert stored.tags == ["review", "review:edit", "review:output"]
    assert (stored.user_id, stored.submitted_at, stored.tenant) == (
        event.decided_by,
        event.decided_at,
        event.tenant,
    )
    assert parse_rules(["corrected"]).source_of(stored) == "corrected"  # a dataset build selects it


@pytest.mark.parametrize(
    ("made", "thumbs"), [(ReviewDecision.APPROVE, "up"), (ReviewDecision.REJECT, "down")]
)
async def test_approve_and_reject_are_thumbs(
    upstream: Upstream, deps: Deps, made: ReviewDecision, thumbs: str
) -> None:
    event = decision(made, text=None, reason="checked")
    await upstream.deliver(event)
    [stored] = (await deps.repository.trail(event.request_id)).feedback
    assert (stored.thumbs, stored.corrected_answer, stored.comment) == (thumbs, None, "checked")
    assert f"review:{made.value}" in stored.tags


async def test_a_decision_by_the_deadline_is_no_feedback(upstream: Upstream, deps: Deps) -> None:
    [late] = [e for e in schema_examples(ReviewResolvedV1.event_type) if e.payload["by_deadline"]]
    event = late.event()
    assert await upstream.deliver(event) == [Outcome.HANDLED]
    assert (await deps.repository.trail(event.request_id)).feedback == ()
