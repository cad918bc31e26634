"""The VectorStore behaviour suite: one abstract class, run against every adapter (in-memory, pgvector,
Weaviate) so the fake cannot drift from the real stores. Vectors are chosen by hand so that the
expected rankings are known exactly."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from cairn_retriever.domain.models import (
    ChunkRecord,
    Document,
    SearchMode,
    SearchQuery,
    chunk_id_for,
    content_hash,
    document_id_for,
)
from cairn_retriever.ports import VectorStore

DIM = 384
CHUNKING = "chars:100:0:test"


def vec(*weights: tuple[int, float]) -> list[float]:
    """A unit vector with the given (dimension, weight) components."""
    v = [0.0] * DIM
    for i, w in weights:
        v[i] = w
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


E0, E1, E2 = vec((0, 1.0)), vec((1, 1.0)), vec((2, 1.0))


async def put(
    store: VectorStore,
    uri: str,
    chunks: Sequence[tuple[str, list[float]]],
    collection: str = "docs",
    version: str = "v1",
) -> Document:
    """Store a document made of (text, vector) chunks."""
    doc_id = document_id_for(collection, uri)
    digest = content_hash(f"{uri}:{version}")
    document = Document(
        document_id=doc_id,
        collection=collection,
        source_uri=uri,
        content_hash=digest,
        chunking=CHUNKING,
        media_type="text/plain",
        title=uri.rsplit("/", 1)[-1],
        char_count=sum(len(t) for t, _ in chunks),
        chunk_count=len(chunks),
        ingested_at=datetime.now(UTC),
    )
    records = [
        ChunkRecord(
            chunk_id=chunk_id_for(doc_id, digest, CHUNKING, i),
            document_id=doc_id,
            ordinal=i,
            text=text,
            content_hash=content_hash(text),
            char_start=0,
            char_end=len(text),
            embedding=v,
        )
        for i, (text, v) in enumerate(chunks)
    ]
    await store.replace_document(document, records)
    return document


def query(
    text: str,
    embedding: list[float],
    k: int = 3,
    mode: SearchMode = SearchMode.HYBRID,
    collection: str | tuple[str, ...] | None = "docs",
    min_similarity: float | None = None,
) -> SearchQuery:
    return SearchQuery(text, embedding, k, mode, collection, min_similarity, depth=20)


FILLERS = [
    (f"lorem ipsum filler number {i}", vec((0, 1.0 - 0.1 * i), (3 + i, 0.1 + 0.1 * i))) for i in range(5)
]


class VectorStoreBehaviour:
    """Subclasses provide an empty `store` fixture."""

    reports_ranks = True
    """Whether hits carry their rank in each list (stores that fuse with RRF themselves)."""

    @pytest.fixture
    def store(self) -> VectorStore:
        raise NotImplementedError

    async def test_an_empty_store_finds_nothing(self, store: VectorStore) -> None:
        for mode in SearchMode:
            assert await store.search(query("anything", E0, mode=mode)) == []
        assert await store.list_documents() == []

    async def test_vector_search_orders_by_cosine_similarity(self, store: VectorStore) -> None:
        await put(
            store,
            "file:///a.txt",
            [
                ("exactly on the query", E0),
                ("close to the query", vec((0, 0.8), (1, 0.6))),
                ("further from the query", vec((0, 0.6), (1, 0.8))),
                ("orthogonal to the query", E2),
            ],
        )
        hits = await store.search(query("query", E0, k=3, mode=SearchMode.VECTOR))
        assert [h.text for h in hits] == [
            "exactly on the query",
            "close to the query",
            "further from the query",
        ]
        assert [h.similarity for h in hits] == pytest.approx([1.0, 0.8, 0.6], abs=1e-4)

    async def test_min_similarity_drops_chunks_below_it(self, store: VectorStore) -> None:
        await put(
            store,
            "file:///a.txt",
            [
                ("query one", E0),
                ("query two", vec((0, 0.8), (1, 0.6))),
                ("query three", vec((0, 0.6), (1, 0.8))),
            ],
        )
        for mode in SearchMode:
            hits = await store.search(query("query", E0, k=3, mode=mode, min_similarity=0.7))
            assert sorted(h.text for h in hits) == ["query one", "query two"], mode
            assert all(h.similarity >= 0.7 for h in hits)
        assert await store.search(query("query", E0, k=3, min_similarity=1.5)) == []

    async def test_hybrid_finds_a_keyword_match_the_vectors_miss(self, store: VectorStore) -> None:
        await put(store, "file:///fillers.txt", FILLERS)
        await put(store, "file:///rare.txt", [("the zyzzyva handshake protocol", E2)])
        by_vector = await store.search(query("zyzzyva", E0, k=3, mode=SearchMode.VECTOR))
        assert "the zyzzyva handshake protocol" not in [h.text for h in by_vector]
        hybrid = await store.search(query("zyzzyva", E0, k=3))
        texts = [h.text for h in hybrid]
        assert "the zyzzyva handshake protocol" in texts
        assert len(hybrid) == 3
        rare = next(h for h in hybrid if h.text.startswith("the zyzzyva"))
        assert rare.similarity == pytest.approx(0.0, abs=1e-4)

    async def test_hybrid_puts_a_chunk_found_both_ways_first(self, store: VectorStore) -> None:
        await put(store, "file:///fillers.txt", FILLERS)
        await put(store, "file:///both.txt", [("zyzzyva near the query", vec((0, 0.95), (9, 0.3)))])
        hits = await store.search(query("zyzzyva", E0, k=3))
        assert hits[0].text == "zyzzyva near the query"
        assert hits[0].fused >= hits[1].fused

    async def test_full_text_wants_every_term_and_falls_back_to_any(self, store: VectorStore) -> None:
        if not self.reports_ranks:
            pytest.skip("this store does not report per-list ranks")
        await put(
            store,
            "file:///t.txt",
            [
                ("alpha beta together", E1),
                ("alpha alone", E2),
                ("beta alone", vec((4, 1.0))),
                ("neither", E0),
            ],
        )
        hits = {h.text: h for h in await store.search(query("alpha beta", E0, k=10))}
        assert hits["alpha beta together"].text_rank == 1
        assert hits["alpha alone"].text_rank is None
        assert hits["beta alone"].text_rank is None
        assert hits["neither"].text_rank is None
        assert hits["neither"].vector_rank == 1
        fallback = {h.text: h for h in await store.search(query("alpha gamma", E0, k=10))}
        assert {t for t, h in fallback.items() if h.text_rank is not None} == {
            "alpha beta together",
            "alpha alone",
        }

    async def test_k_limits_the_hits(self, store: VectorStore) -> None:
        await put(store, "file:///fillers.txt", FILLERS)
        for mode in SearchMode:
            assert len(await store.search(query("lorem", E0, k=2, mode=mode))) == 2
            assert len(await store.search(query("lorem", E0, k=50, mode=mode))) == len(FILLERS)

    async def test_hits_carry_their_provenance(self, store: VectorStore) -> None:
        doc = await put(store, "pydoc:topics/yield", [("first chunk", E1), ("second chunk", E0)])
        (hit,) = await store.search(query("second", E0, k=1, mode=SearchMode.VECTOR))
        assert hit.source_uri == "pydoc:topics/yield"
        assert hit.document_id == doc.document_id
        assert hit.collection == "docs"
        assert hit.text == "second chunk"
        assert hit.content_hash == content_hash("second chunk")
        assert hit.ordinal == 1
        assert hit.chunk_id == chunk_id_for(doc.document_id, doc.content_hash, CHUNKING, 1)

    async def test_collections_are_kept_apart(self, store: VectorStore) -> None:
        await put(store, "file:///same.txt", [("text in docs", E0)], collection="docs")
        await put(store, "file:///same.txt", [("text in other", E0)], collection="other")
        for mode in SearchMode:
            hits = await store.search(query("text", E0, k=5, mode=mode, collection="other"))
            assert [h.text for h in hits] == ["text in other"]
            everywhere = await store.search(query("text", E0, k=5, mode=mode, collection=None))
            assert sorted(h.text for h in everywhere) == ["text in docs", "text in other"]
        assert [d.collection for d in await store.list_documents()] == ["docs", "other"]
        assert [d.collection for d in await store.list_documents("other")] == ["other"]

    async def test_several_collections_are_searched_as_one_and_no_others(self, store: VectorStore) -> None:
        await put(store, "file:///same.txt", [("text in acme", E0)], collection="acme/kb")
        await put(store, "file:///same.txt", [("text in shared", E1)], collection="kb")
        await put(store, "file:///same.txt", [("text in globex", E0)], collection="globex/kb")
        for mode in SearchMode:
            hits = await store.search(query("text", E0, k=5, mode=mode, collection=("acme/kb", "kb")))
            assert sorted(h.collection for h in hits) == ["acme/kb", "kb"], mode
            assert hits[0].collection == "acme/kb"  # E0: the nearer one
            only = await store.search(query("text", E0, k=5, mode=mode, collection=("kb",)))
            assert [h.collection for h in only] == ["kb"]

    async def test_a_document_is_found_by_its_id(self, store: VectorStore) -> None:
        stored = await put(store, "file:///a.txt", [("one", E0)], collection="acme/kb")
        found = await store.get_document(stored.document_id)
        assert found is not None
        assert (found.document_id, found.collection, found.source_uri, found.chunk_count) == (
            stored.document_id,
            "acme/kb",
            "file:///a.txt",
            1,
        )
        assert await store.get_document("doc_nothing") is None

    async def test_document_state_is_what_was_stored(self, store: VectorStore) -> None:
        assert await store.document_state("docs", "file:///a.txt") is None
        doc = await put(store, "file:///a.txt", [("a", E0)])
        state = await store.document_state("docs", "file:///a.txt")
        assert state is not None
        assert (state.content_hash, state.chunking) == (doc.content_hash, CHUNKING)
        assert await store.document_state("other", "file:///a.txt") is None

    async def test_replacing_a_document_swaps_all_its_chunks(self, store: VectorStore) -> None:
        await put(store, "file:///a.txt", [("old alpha", E0), ("old beta", E1)], version="v1")
        await put(store, "file:///b.txt", [("unrelated", E2)])
        new = await put(store, "file:///a.txt", [("new gamma", E0)], version="v2")
        for mode in SearchMode:
            hits = await store.search(query("old alpha beta gamma", E0, k=10, mode=mode))
            assert sorted(h.text for h in hits) == ["new gamma", "unrelated"], mode
        state = await store.document_state("docs", "file:///a.txt")
        assert state is not None
        assert state.content_hash == new.content_hash
        docs = {d.source_uri: d for d in await store.list_documents()}
        assert docs["file:///a.txt"].chunk_count == 1
        assert docs["file:///a.txt"].content_hash == new.content_hash

    async def test_writing_the_same_version_twice_stores_it_once(self, store: VectorStore) -> None:
        await put(store, "file:///a.txt", [("only once", E0)])
        await put(store, "file:///a.txt", [("only once", E0)])
        hits = await store.search(query("only once", E0, k=10, mode=SearchMode.VECTOR))
        assert [h.text for h in hits] == ["only once"]
        assert len(await store.list_documents()) == 1

    async def test_a_document_without_chunks_is_listed_but_never_found(self, store: VectorStore) -> None:
        await put(store, "file:///a.txt", [("something", E0)], version="v1")
        await put(store, "file:///a.txt", [], version="v2")
        (doc,) = await store.list_documents()
        assert doc.chunk_count == 0
        assert await store.search(query("something", E0, k=5)) == []

    async def test_delete_removes_the_document_and_its_chunks(self, store: VectorStore) -> None:
        await put(store, "file:///a.txt", [("delete me", E0)], collection="docs")
        await put(store, "file:///a.txt", [("keep me", E0)], collection="other")
        await put(store, "file:///b.txt", [("keep me too", E1)], collection="docs")
        assert await store.delete_document("file:///a.txt", "docs") == 1
        assert await store.delete_document("file:///a.txt", "docs") == 0
        hits = await store.search(query("delete keep", E0, k=10, collection=None))
        assert sorted(h.text for h in hits) == ["keep me", "keep me too"]
        assert await store.delete_document("file:///a.txt") == 1
        assert [d.source_uri for d in await store.list_documents()] == ["file:///b.txt"]
        assert await store.document_state("docs", "file:///a.txt") is None
