"""The retrieval loop through the real wiring with fakes: feedback on a served request moves ranking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cairn_bus import InMemoryInbox, InMemoryPublisher, build_meta
from cairn_events import ContextAssembledV1, FeedbackSubmittedV1, PromptRenderedV1
from cairn_retriever import bootstrap
from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore
from cairn_retriever.adapters.memory_priors import InMemoryPriorStore
from cairn_retriever.adapters.sources import InlineSource, extract_text
from cairn_retriever.app import router
from cairn_retriever.handlers import on_feedback_submitted, on_prompt_rendered
from cairn_retriever.ingest import ChunkingConfig, Ingestor
from cairn_retriever.settings import Settings

NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
DOCS = {
    "kb://returns": "Returns: send the parcel back within thirty days for a refund of the parcel price.",
    "kb://refunds": "Refunds are paid to the original card within five working days.",
    "kb://jackets": "Jackets come in three colours and can be washed at thirty degrees.",
}
QUESTION = "When is my refund paid after I send the parcel back?"


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher("/cairn/retriever", allowed_types=router.published_types)


@pytest.fixture
def priors() -> InMemoryPriorStore:
    return InMemoryPriorStore()


async def loop_deps(
    publisher: InMemoryPublisher, priors: InMemoryPriorStore, **settings: Any
) -> AsyncIterator[bootstrap.Deps]:
    store, embedder = InMemoryVectorStore(), HashingEmbedder()
    ingestor = Ingestor(embedder, store, extract_text, ChunkingConfig("tokens", 60, 10))
    for uri, text in DOCS.items():
        await ingestor.ingest(InlineSource(uri, text, "text/plain"), "acme/kb")
    async with bootstrap.build(
        Settings(**settings),
        publisher,
        embedder=embedder,
        store=store,
        inbox=InMemoryInbox(),
        clock=lambda: NOW,
        priors=priors,
    ) as deps:
        yield deps


@pytest.fixture
async def deps(publisher: InMemoryPublisher, priors: InMemoryPriorStore) -> AsyncIterator[bootstrap.Deps]:
    async for d in loop_deps(publisher, priors):
        yield d


async def ask(deps: bootstrap.Deps, publisher: InMemoryPublisher, request_id: str, **meta: Any) -> list[str]:
    event = PromptRenderedV1(
        request_id=request_id,
        tenant="acme",
        prompt_name="qa",
        prompt_version=1,
        messages=[{"role": "user", "content": QUESTION}],
        retrieval={"top_k": 1, "collection": "kb"},
        params={},
        rendered_at=NOW - timedelta(seconds=1),
    )
    await on_prompt_rendered(event, build_meta(event, source="/cairn/prompt-store", **meta), deps)
    out = [e for e in publisher.events(ContextAssembledV1.event_type) if e.request_id == request_id]
    return [c.source_uri for c in out[-1].chunks]


def feedback(request_id: str, feedback_id: str = "fb-1", **fields: Any) -> FeedbackSubmittedV1:
    return FeedbackSubmittedV1(
        feedback_id=feedback_id, request_id=request_id, tenant="acme", submitted_at=NOW, **fields
    )


async def give(deps: bootstrap.Deps, event: FeedbackSubmittedV1) -> None:
    await on_feedback_submitted(event, build_meta(event, source="/cairn/upstream"), deps)


async def test_feedback_naming_the_missed_source_reranks_it_first(
    deps: bootstrap.Deps, publisher: InMemoryPublisher, priors: InMemoryPriorStore
) -> None:
    assert await ask(deps, publisher, "req-1") == ["kb://returns"]
    await give(deps, feedback("req-1", thumbs="down", tags=["source:kb://refunds"]))
    assert await ask(deps, publisher, "req-2") == ["kb://refunds"]
    assert sorted((v.up, v.down) for (_, _), v in priors.counts.items()) == [(0, 1), (1, 0)]


async def test_negative_feedback_alone_lowers_what_was_served(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    assert await ask(deps, publisher, "req-1") == ["kb://returns"]
    await give(deps, feedback("req-1", rating=1))
    assert await ask(deps, publisher, "req-2") != ["kb://returns"]


async def test_the_same_feedback_id_votes_once(
    deps: bootstrap.Deps, publisher: InMemoryPublisher, priors: InMemoryPriorStore
) -> None:
    await ask(deps, publisher, "req-1")
    event = feedback("req-1", thumbs="down")
    await give(deps, event)
    await give(deps, event)  # redelivered
    await give(deps, event.model_copy(update={"comment": "sent again by the producer"}))  # a new event id
    assert [v.down for v in priors.counts.values()] == [1]


async def test_feedback_without_a_served_record_or_signal_changes_nothing(
    deps: bootstrap.Deps, publisher: InMemoryPublisher, priors: InMemoryPriorStore
) -> None:
    await give(deps, feedback("never-served", thumbs="down"))
    await ask(deps, publisher, "req-1")
    await give(deps, feedback("req-1", feedback_id="fb-2", rating=3, comment="ok"))
    assert priors.counts == {}


async def test_a_replay_is_not_recorded_and_other_tenants_are_unaffected(
    deps: bootstrap.Deps, publisher: InMemoryPublisher, priors: InMemoryPriorStore
) -> None:
    await ask(deps, publisher, "req-replayed", replay_id="replay-1")
    assert await priors.served("acme", "req-replayed") is None
    await ask(deps, publisher, "req-1")
    await give(deps, feedback("req-1", thumbs="down", tags=["source:kb://refunds"]))
    assert {tenant for tenant, _ in priors.counts} == {"acme"}


async def test_with_weight_zero_the_loop_is_off(
    publisher: InMemoryPublisher, priors: InMemoryPriorStore
) -> None:
    async for deps in loop_deps(publisher, priors, prior_weight=0.0):
        await ask(deps, publisher, "req-1")
        await give(deps, feedback("req-1", thumbs="down", tags=["source:kb://refunds"]))
        assert await ask(deps, publisher, "req-2") == ["kb://returns"]
    assert priors.served_by_request == {}
    assert priors.counts == {}
