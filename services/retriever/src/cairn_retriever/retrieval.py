"""Searching on behalf of a request or a user: embed the query off the event loop, then ask the store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from opentelemetry.trace import SpanKind

from cairn_observability import get_tracer
from cairn_retriever.domain.models import SearchHit, SearchMode, SearchQuery
from cairn_retriever.ports import Embedder, VectorStore

tracer = get_tracer("cairn.retriever")
EMBEDDINGS_PROVIDER = "sentence_transformers"
"""`gen_ai.provider.name` of the query embeddings: the model runs in process (sentence-transformers)."""
DEFAULT_DATA_SOURCE = "default"
"""`gen_ai.data_source.id` of a search naming no collection (the store's default collection)."""


@dataclass(frozen=True)
class SearchConfig:
    """How searches rank: the default mode, candidates per ranked list, the RRF constant."""

    mode: SearchMode = SearchMode.HYBRID
    depth: int = 40
    rrf_k: int = 60


class Retriever:
    """Embeds queries (in a worker thread: the model is CPU-bound) and searches the vector store."""

    def __init__(self, embedder: Embedder, store: VectorStore, config: SearchConfig | None = None) -> None:
        self.embedder = embedder
        self.store = store
        self.config = config or SearchConfig()

    async def embed_query(self, text: str) -> list[float]:
        """The query's vector, computed in a worker thread."""
        with tracer.start_as_current_span(f"embeddings {self.embedder.name}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "embeddings")
            span.set_attribute("gen_ai.provider.name", EMBEDDINGS_PROVIDER)
            span.set_attribute("gen_ai.request.model", self.embedder.name)
            embedding = await asyncio.to_thread(self.embedder.embed_query, text)
            span.set_attribute("gen_ai.embeddings.dimension.count", len(embedding))
            return embedding

    async def search(
        self,
        text: str,
        *,
        k: int,
        collection: str | tuple[str, ...] | None,
        min_similarity: float | None = None,
        mode: SearchMode | None = None,
    ) -> list[SearchHit]:
        """The best `k` chunks for `text` (see VectorStore.search); similarity floor on cosine similarity.

        `collection` is a stored collection name or several (a tenant's own and the shared one, see
        `domain.tenancy.readable_collections`), searched as one.
        """
        embedding = await self.embed_query(text)
        query = SearchQuery(
            text=text,
            embedding=embedding,
            k=k,
            mode=mode or self.config.mode,
            collection=collection,
            min_similarity=min_similarity,
            depth=max(self.config.depth, k),
            rrf_k=self.config.rrf_k,
        )
        source = (",".join(query.collections) if query.collections else None) or DEFAULT_DATA_SOURCE
        with tracer.start_as_current_span(f"retrieval {source}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "retrieval")
            span.set_attribute("gen_ai.data_source.id", source)
            span.set_attribute("gen_ai.request.top_k", k)
            span.set_attribute("cairn.retrieval.mode", query.mode.value)
            if min_similarity is not None:
                span.set_attribute("cairn.retrieval.min_similarity", min_similarity)
            hits = await self.store.search(query)
            span.set_attribute("cairn.retrieval.hits", len(hits))
            return hits
