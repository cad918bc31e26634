"""Documents per tenant: stored collection names, and requests that only ever read their own and shared chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cairn_bus import InMemoryInbox, InMemoryPublisher
from cairn_events import ContextAssembledV1, PromptRenderedV1, ResponseCompletedV1, ResponseStatus
from cairn_retriever import bootstrap
from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore
from cairn_retriever.adapters.sources import InlineSource, extract_text
from cairn_retriever.app import router
from cairn_retriever.domain.tenancy import (
    owner_of,
    readable_by,
    readable_collections,
    stored_collection,
)
from cairn_retriever.handlers import on_prompt_rendered
from cairn_retriever.ingest import ChunkingConfig, Ingestor
from cairn_retriever.settings import Settings

from .test_retriever_handlers import NOW, meta_for, rendered

ACME_SECRET = "Acme secret: the merger with Initech closes on the ninth of May."
GLOBEX_SECRET = "Globex secret: the merger with Initech is called off in May."
SHARED_FACT = "Mergers: a merger joins two companies; closing dates are announced publicly."


def test_retriever_tenants_collection_names_say_whose_they_are() -> None:
    assert stored_collection("default", "kb") == "kb"
    assert stored_collection("acme", "kb") == "acme/kb"
    assert owner_of("acme/kb") == ("acme", "kb")
    assert owner_of("kb") == ("default", "kb")
    assert readable_collections("acme", "kb") == ("acme/kb", "kb")
    assert readable_collections("default", "kb") == ("kb",)
    assert readable_by("acme", "acme/kb")
    assert readable_by("acme", "kb")
    assert not readable_by("acme", "globex/kb")
    for tenant, collection in [
        ("acme", "globex/kb"),
        ("a/b", "kb"),
        ("*", "kb"),
        ("acme", ""),
        ("acme", "../kb"),
    ]:
        with pytest.raises(ValueError):
            stored_collection(tenant, collection)


@pytest.fixture
def store() -> InMemoryVectorStore:
    return InMemoryVectorStore()


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher("/cairn/retriever", allowed_types=router.published_types)


@pytest.fixture
async def deps(store: InMemoryVectorStore, publisher: InMemoryPublisher) -> AsyncIterator[bootstrap.Deps]:
    """acme's and globex's secrets in their own `kb`, a shared fact in the shared `kb`."""
    embedder = HashingEmbedder()
    ingestor = Ingestor(embedder, store, extract_text, ChunkingConfig("tokens", 60, 10))
    for tenant, uri, text in [
        ("acme", "kb://plans", ACME_SECRET),
        ("globex", "kb://plans", GLOBEX_SECRET),
        ("default", "kb://glossary", SHARED_FACT),
    ]:
        await ingestor.ingest(InlineSource(uri, text, "text/plain"), stored_collection(tenant, "kb"))
    settings = Settings(context_token_budget=400, give_up_after_s=60)
    async with bootstrap.build(
        settings, publisher, embedder=embedder, store=store, inbox=InMemoryInbox(), clock=lambda: NOW
    ) as d:
        yield d


async def ask(deps: bootstrap.Deps, publisher: InMemoryPublisher, tenant: str, **retrieval: object) -> object:
    event = rendered(
        request_id=f"req-{tenant}-{len(publisher.messages)}",
        tenant=tenant,
        retrieval={"query": "when does the merger with Initech close", "top_k": 10, **retrieval},
    )
    assert isinstance(event, PromptRenderedV1)
    await on_prompt_rendered(event, meta_for(event), deps)
    return publisher.messages[-1].event


async def test_retriever_tenants_a_request_never_gets_another_tenants_chunks(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    for tenant, own, other in [("acme", ACME_SECRET, GLOBEX_SECRET), ("globex", GLOBEX_SECRET, ACME_SECRET)]:
        out = await ask(deps, publisher, tenant, collection="kb")
        assert isinstance(out, ContextAssembledV1)
        texts = [c.text for c in out.chunks]
        assert own in texts
        assert SHARED_FACT in texts  # the shared collection is everyone's
        assert other not in texts
        assert other not in out.messages[1].content


async def test_retriever_tenants_other_tenants_get_only_shared_chunks(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    for tenant in ("initech", "default"):
        out = await ask(deps, publisher, tenant, collection="kb")
        assert isinstance(out, ContextAssembledV1)
        assert [c.text for c in out.chunks] == [SHARED_FACT]


async def test_retriever_tenants_naming_another_tenants_collection_is_refused(
    deps: bootstrap.Deps, publisher: InMemoryPublisher
) -> None:
    out = await ask(deps, publisher, "globex", collection="acme/kb")
    assert isinstance(out, ResponseCompletedV1)
    assert out.status is ResponseStatus.REJECTED
    assert out.reason is not None
    assert out.reason.startswith("retrieval refused: invalid collection 'acme/kb'")
    assert all(not isinstance(m.event, ContextAssembledV1) for m in publisher.messages)
