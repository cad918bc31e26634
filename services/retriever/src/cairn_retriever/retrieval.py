"""Searching on behalf of a request or a user: embed the query off the event loop, then ask the store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.trace import SpanKind

from cairn_observability import get_tracer
from cairn_retriever.domain.models import SearchHit, SearchMode, SearchQuery
from cairn_retriever.ports import Embedder, VectorStore
from cairn_retriever.query_batching import QueryBatcher

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

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        config: SearchConfig | None = None,
        *,
        batch_window_ms: float | None = None,
        batch_max: int = 32,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.config = config or SearchConfig()
        self.batcher = (
            QueryBatcher(self._embed_queries, window_ms=batch_window_ms, max_batch=batch_max)
            if batch_window_ms is not None
            else None
        )
        """Embeds concurrent queries in one model call (the service); none: one by one."""

    def _embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several queries at once: one call when the embedder can (`embed_queries`), else one by one."""
        many = getattr(self.embedder, "embed_queries", None)
        if callable(many):
            return list(many(texts))
        return [self.embedder.embed_query(text) for text in texts]

    async def embed_query(self, text: str) -> list[float]:
        """The query's vector, computed in a worker thread."""
        with tracer.start_as_current_span(f"embeddings {self.embedder.name}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "embeddings")
            span.set_attribute("gen_ai.provider.name", EMBEDDINGS_PROVIDER)
            span.set_attribute("gen_ai.request.model", self.embedder.name)
            if self.batcher is not None:
                embedding = await self.batcher.embed(text)
            else:
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
