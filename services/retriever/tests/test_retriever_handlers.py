"""`on_prompt_rendered` through the real wiring with fakes: hashing embedder, in-memory store and inbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from cairn_bus import (
    Claim,
    Dispatcher,
    EventMeta,
    InMemoryInbox,
    InMemoryPublisher,
    Outcome,
    RawRecord,
    build_meta,
)
from cairn_events import (
    ContextAssembledV1,
    PromptRenderedV1,
    ResponseCompletedV1,
    ResponseStatus,
    encode,
)
from cairn_retriever import bootstrap
from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore
from cairn_retriever.adapters.sources import PydocTopicsSource, extract_text
from cairn_retriever.app import router
from cairn_retriever.domain.context import CONTEXT_INSTRUCTIONS
from cairn_retriever.handlers import on_prompt_rendered
from cairn_retriever.ingest import ChunkingConfig, Ingestor
from cairn_retriever.ports import DocumentRef
from cairn_retriever.settings import Settings
from cairn_testing import schema_examples

EXAMPLE = schema_examples("cairn.prompt.rendered.v1")[0].event()
assert isinstance(EXAMPLE, PromptRenderedV1)
NOW = EXAMPLE.rendered_at + timedelta(seconds=2)


class KB:
    """A tiny knowledge base the example request (acme-kb, "refund timing after return") can use."""

    docs = {
        "kb://refunds": "Refund timing: after your return arrives, the refund is paid within five days.",
        "kb://shipping": "Shipping: parcels leave the warehouse within two days of the order.",
        "kb://jackets": "Jackets come in three colours and can be washed at thirty degrees.",
    }

    def describe(self) -> str:
        return "kb"

    def refs(self) -> list[DocumentRef]:
        return [DocumentRef(uri, "text/plain", uri) for uri in sorted(self.docs)]

    def read(self, ref: DocumentRef) -> bytes:
        return self.docs[ref.uri].encode()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> InMemoryVectorStore:
    return InMemoryVectorStore()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher("/cairn/retriever", allowed_types=router.published_types)


@pytest.fixture
async def deps(
    store: InMemoryVectorStore, clock: Clock, publisher: InMemoryPublisher
) -> AsyncIterator[bootstrap.Deps]:
    embedder = HashingEmbedder()
    ingestor = Ingestor(embedder, store, extract_text, ChunkingConfig("tokens", 60, 10))
    await ingestor.ingest(KB(), "acme-kb")
    await ingestor.ingest(PydocTopicsSource(["yield", "pass"]), "default")
    settings = Settings(context_token_budget=400, give_up_after_s=60)
    async with bootstrap.build(
        settings, publisher, embedder=embedder, store=store, inbox=InMemoryInbox(), clock=clock
    ) as d:
        yield d


def rendered(**changes: Any) -> PromptRenderedV1:
    return PromptRenderedV1.model_validate({**EXAMPLE.model_dump(mode="json"), **changes})


def meta_for(event: PromptRenderedV1) -> EventMeta:
    return build_meta(event, source="/cairn/prompt-store")


def published(publisher: InMemoryPublisher, cls: type[Any]) -> list[Any]:
    return publisher.events(cls.event_type)


async def test_the_example_request_gets_numbered_passages_from_its_collection(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered(
        retrieval={
            "query": "refund timing after return",
            "top_k": 4,
            "min_score": 0.2,
            "collection": "acme-kb",
        }
    )
    meta = meta_for(event)
    await on_prompt_rendered(event, meta, deps)
    (out,) = published(publisher, ContextAssembledV1)
    assert publisher.messages[0].meta.causation_id == meta.id
    assert out.chunks, "the refunds document shares words with the query"
    assert out.chunks[0].source_uri == "kb://refunds"
    assert all(c.source_uri.startswith("kb://") for c in out.chunks)  # collection acme-kb only
    assert all(c.score >= 0.2 for c in out.chunks)
    assert [m.role for m in out.messages] == ["system", "system", "user", "assistant", "user"]
    assert out.messages[0] == event.messages[0]
    assert out.messages[2:] == event.messages[1:]
    context = out.messages[1].content
    assert context.startswith(CONTEXT_INSTRUCTIONS)
    for n, chunk in enumerate(out.chunks, start=1):
        assert f"[{n}] ({chunk.source_uri}) {chunk.text}" in context
        assert chunk.content_hash.startswith("sha256:")
    assert out.context_tokens == deps.retriever.embedder.count_tokens(context)
    assert 0 < out.context_tokens <= 400
    assert (out.request_id, out.tenant, out.prompt_name, out.prompt_version) == (
        event.request_id,
        event.tenant,
        event.prompt_name,
        event.prompt_version,
    )
    assert (out.params, out.model, out.assembled_at) == (event.params, event.model, NOW)


async def test_without_retrieval_the_messages_pass_through(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered(retrieval=None)
    await on_prompt_rendered(event, meta_for(event), deps)
    (out,) = published(publisher, ContextAssembledV1)
    assert out.messages == event.messages
    assert out.chunks == []
    assert out.context_tokens == 0


async def test_a_duplicate_delivery_publishes_once(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered()
    meta = meta_for(event)
    await on_prompt_rendered(event, meta, deps)
    await on_prompt_rendered(event, meta, deps)
    assert len(publisher.messages) == 1


async def test_nothing_above_the_threshold_means_an_empty_context(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered(
        retrieval={"query": "refund timing after return", "min_score": 0.99, "collection": "acme-kb"}
    )
    await on_prompt_rendered(event, meta_for(event), deps)
    (out,) = published(publisher, ContextAssembledV1)
    assert out.chunks == []
    assert out.messages == event.messages
    assert out.context_tokens == 0


async def test_the_last_user_message_is_the_query_and_the_default_collection_is_searched(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered(
        messages=[{"role": "user", "content": "What does the yield statement do in a generator?"}],
        retrieval={"top_k": 2},
    )
    await on_prompt_rendered(event, meta_for(event), deps)
    (out,) = published(publisher, ContextAssembledV1)
    assert out.chunks[0].source_uri == "pydoc:topics/yield"
    assert [m.role for m in out.messages] == ["system", "user"]  # no system message: context first
    assert len(out.chunks) <= 2


async def test_a_retrieval_with_nothing_to_search_for_is_rejected(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered(messages=[{"role": "system", "content": "Be nice."}], retrieval={"top_k": 2})
    await on_prompt_rendered(event, meta_for(event), deps)
    assert published(publisher, ContextAssembledV1) == []
    (out,) = published(publisher, ResponseCompletedV1)
    assert out.status is ResponseStatus.REJECTED
    assert out.request_id == event.request_id
    assert out.reason


async def test_a_store_outage_is_retried_then_given_up(
    deps: bootstrap.Deps, store: InMemoryVectorStore, clock: Clock, publisher: InMemoryPublisher
) -> None:
    event = rendered()
    meta = meta_for(event)
    store.down = True
    with pytest.raises(ConnectionError):
        await on_prompt_rendered(event, meta, deps)
    assert publisher.messages == []
    clock.now = event.rendered_at + timedelta(seconds=61)
    await on_prompt_rendered(event, meta, deps)  # the failed attempt did not keep its inbox claim
    (out,) = published(publisher, ResponseCompletedV1)
    assert out.status is ResponseStatus.FAILED
    assert "unavailable" in (out.reason or "")
    assert (out.prompt_name, out.prompt_version) == (event.prompt_name, event.prompt_version)
    await on_prompt_rendered(event, meta, deps)
    assert len(publisher.messages) == 1


async def test_when_its_database_is_down_an_old_request_is_answered_failed(
    deps: bootstrap.Deps, clock: Clock, publisher: InMemoryPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    @asynccontextmanager
    async def unreachable(consumer: str, event_id: str) -> AsyncIterator[Claim]:
        raise ConnectionRefusedError("database down")
        yield Claim(True)

    monkeypatch.setattr(deps.inbox, "once", unreachable)
    event = rendered()
    with pytest.raises(ConnectionRefusedError):
        await on_prompt_rendered(event, meta_for(event), deps)
    assert publisher.messages == []
    clock.now = event.rendered_at + timedelta(seconds=61)
    await on_prompt_rendered(event, meta_for(event), deps)
    (out,) = published(publisher, ResponseCompletedV1)
    assert out.status is ResponseStatus.FAILED
    assert "database unavailable" in (out.reason or "")


async def test_a_failed_commit_after_publishing_is_retried_not_answered_failed(
    deps: bootstrap.Deps, clock: Clock, publisher: InMemoryPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    @asynccontextmanager
    async def commit_fails(consumer: str, event_id: str) -> AsyncIterator[Claim]:
        yield Claim(True)
        raise ConnectionResetError("lost at commit")

    monkeypatch.setattr(deps.inbox, "once", commit_fails)
    event = rendered()
    clock.now = event.rendered_at + timedelta(seconds=61)
    with pytest.raises(ConnectionResetError):
        await on_prompt_rendered(event, meta_for(event), deps)
    assert [m.meta.type for m in publisher.messages] == [ContextAssembledV1.event_type]


def record_of(event: PromptRenderedV1, meta: EventMeta, value: bytes | None = None) -> RawRecord:
    return RawRecord(
        topic="cairn.prompts",
        partition=0,
        offset=7,
        value=encode(event) if value is None else value,
        key=event.request_id.encode(),
        headers=list(meta.to_headers()),
    )


class BrokenEmbedder(HashingEmbedder):
    def embed_query(self, text: str) -> list[float]:
        raise RuntimeError("model exploded")


async def test_a_handler_that_keeps_failing_is_dead_lettered_and_the_request_answered(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    deps.retriever.embedder = BrokenEmbedder()
    event = rendered()
    meta = meta_for(event)
    dispatcher = Dispatcher(
        router, deps, publisher, group_id="cairn-retriever", max_attempts=2, retry_backoff_s=0
    )
    assert await dispatcher.dispatch(record_of(event, meta)) is Outcome.DEADLETTERED
    (answer,) = published(publisher, ResponseCompletedV1)
    assert answer.status is ResponseStatus.FAILED
    assert answer.request_id == event.request_id
    assert answer.tenant == event.tenant
    assert "model exploded" in (answer.reason or "")
    sent = next(m for m in publisher.messages if m.meta.type == ResponseCompletedV1.event_type)
    assert sent.meta.causation_id == meta.id


async def test_an_unreadable_prompt_is_answered_failed(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered()
    meta = meta_for(event)
    dispatcher = Dispatcher(
        router, deps, publisher, group_id="cairn-retriever", max_attempts=1, retry_backoff_s=0
    )
    bad = json.loads(encode(event))
    del bad["params"]
    assert await dispatcher.dispatch(record_of(event, meta, json.dumps(bad).encode())) is Outcome.DEADLETTERED
    (answer,) = published(publisher, ResponseCompletedV1)
    assert answer.status is ResponseStatus.FAILED
    assert answer.request_id == event.request_id
    assert answer.prompt_name == event.prompt_name


async def test_dead_letters_of_other_types_get_no_answer(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    event = rendered()
    meta = meta_for(event)
    record = record_of(event, meta)
    other = RawRecord(
        record.topic,
        0,
        1,
        b"{}",
        key=b"req-1",
        headers=[(k, b"cairn.prompt.rendered.v9" if k == "ce_type" else v) for k, v in record.headers],
    )
    from cairn_events import DeadLetterKind

    assert router.dead_letter_hook is not None
    await router.dead_letter_hook(other, DeadLetterKind.UNKNOWN_TYPE, "unknown", deps)
    assert publisher.messages == []


def test_the_router_declares_what_the_service_does() -> None:
    assert sorted(router.topics) == ["cairn.feedback", "cairn.prompts"]
    assert {ContextAssembledV1.event_type, ResponseCompletedV1.event_type} <= router.published_types
    assert router.handler_for(PromptRenderedV1.event_type) is on_prompt_rendered
