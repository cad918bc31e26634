"""GenAI spans of a search (embeddings, retrieval) and what counts as a retrieval hit."""

from __future__ import annotations

import dataclasses

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cairn_retriever import retrieval
from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore
from cairn_retriever.domain.models import SearchHit
from cairn_retriever.handlers import retrieval_outcome
from cairn_retriever.retrieval import Retriever
from cairn_retriever.settings import Settings


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(retrieval, "tracer", provider.get_tracer("cairn.retriever"))
    return exporter


async def test_a_search_is_an_embeddings_span_and_a_retrieval_span(exporter: InMemorySpanExporter) -> None:
    retriever = Retriever(HashingEmbedder(), InMemoryVectorStore())
    await retriever.search("refund timing", k=3, collection="acme-kb", min_similarity=0.2)
    embeddings, search = exporter.get_finished_spans()
    assert embeddings.name == "embeddings hashing-embedder"
    assert embeddings.kind is SpanKind.CLIENT
    assert dict(embeddings.attributes or {}) == {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "sentence_transformers",
        "gen_ai.request.model": "hashing-embedder",
        "gen_ai.embeddings.dimension.count": 384,
    }
    assert search.name == "retrieval acme-kb"
    assert search.kind is SpanKind.CLIENT
    attributes = dict(search.attributes or {})
    assert attributes["gen_ai.operation.name"] == "retrieval"
    assert attributes["gen_ai.data_source.id"] == "acme-kb"
    assert attributes["gen_ai.request.top_k"] == 3
    assert attributes["cairn.retrieval.min_similarity"] == 0.2
    assert attributes["cairn.retrieval.hits"] == 0


def _hit(similarity: float) -> SearchHit:
    fields = {f.name: f.default for f in dataclasses.fields(SearchHit)}
    values = {
        name: (default if default is not dataclasses.MISSING else "x") for name, default in fields.items()
    }
    values.update(ordinal=0, similarity=similarity)
    return SearchHit(**values)  # type: ignore[arg-type]


def test_a_hit_needs_one_chunk_at_the_threshold() -> None:
    assert retrieval_outcome([], 0.3) == "miss"
    assert retrieval_outcome([_hit(0.1), _hit(0.29)], 0.3) == "miss"
    assert retrieval_outcome([_hit(0.1), _hit(0.3)], 0.3) == "hit"
    assert Settings().retrieval_hit_threshold == 0.3
