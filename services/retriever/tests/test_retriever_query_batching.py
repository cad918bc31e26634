"""Concurrent queries share one embedding call; each gets its own vector; failures reach every waiter."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from cairn_retriever.query_batching import QueryBatcher


class CountingEmbedder:
    name = "counting"
    dimension = 2

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        if self.fail:
            raise RuntimeError("model gone")
        return [[float(len(t)), float(i)] for i, t in enumerate(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        return len(text.split())


async def test_concurrent_queries_share_one_model_call_and_keep_their_own_vectors() -> None:
    embedder = CountingEmbedder()
    batcher = QueryBatcher(embedder.embed_documents, window_ms=20)
    texts = [f"q{'x' * i}" for i in range(10)]
    vectors = await asyncio.gather(*(batcher.embed(t) for t in texts))
    assert len(embedder.calls) == 1
    assert embedder.calls[0] == texts
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts]


async def test_a_full_batch_goes_at_once_and_the_rest_follows() -> None:
    embedder = CountingEmbedder()
    batcher = QueryBatcher(embedder.embed_documents, window_ms=1000, max_batch=4)
    vectors = await asyncio.wait_for(asyncio.gather(*(batcher.embed(str(i)) for i in range(10))), 5)
    assert [len(c) for c in embedder.calls] == [4, 4, 2]
    assert len(vectors) == 10


async def test_a_lone_query_is_embedded_after_the_window() -> None:
    embedder = CountingEmbedder()
    batcher = QueryBatcher(embedder.embed_documents, window_ms=1)
    assert await batcher.embed("alone") == [5.0, 0.0]
    assert await batcher.embed("again") == [5.0, 0.0]
    assert embedder.calls == [["alone"], ["again"]]


async def test_a_failing_model_call_fails_every_waiter() -> None:
    batcher = QueryBatcher(CountingEmbedder(fail=True).embed_documents, window_ms=5)
    results = await asyncio.gather(batcher.embed("a"), batcher.embed("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError, match="model gone"):
        await batcher.embed("c")


class BatchingAwareEmbedder(CountingEmbedder):
    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed_documents(texts)


async def test_the_retriever_embeds_concurrent_queries_together() -> None:
    from cairn_retriever.retrieval import Retriever

    embedder = BatchingAwareEmbedder()
    retriever = Retriever(embedder, store=None, batch_window_ms=20)  # type: ignore[arg-type]
    vectors = await asyncio.gather(*(retriever.embed_query(f"question {i}") for i in range(6)))
    assert len(embedder.calls) == 1
    assert len(vectors) == 6
    plain = CountingEmbedder()  # no embed_queries: one call per query, still batched in time
    retriever = Retriever(plain, store=None, batch_window_ms=20)  # type: ignore[arg-type]
    await asyncio.gather(*(retriever.embed_query(f"q{i}") for i in range(3)))
    assert plain.calls == [["q0"], ["q1"], ["q2"]]


def test_a_pool_too_small_for_the_concurrency_is_refused_with_the_reason() -> None:
    from cairn_retriever.settings import Settings

    with pytest.raises(ValueError, match="at least 17"):
        Settings(consumer_concurrency=8, postgres_pool_max=5)
    assert Settings(consumer_concurrency=8).postgres_pool_max >= 17
    assert Settings(consumer_concurrency=1, postgres_pool_max=3).postgres_pool_max == 3
