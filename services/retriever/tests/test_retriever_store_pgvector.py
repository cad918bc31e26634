"""The VectorStore behaviour suite against PostgreSQL + pgvector (a fresh database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_bus.postgres import create_pool
from cairn_retriever.adapters.pgvector import PgVectorStore
from cairn_retriever.adapters.postgres import ensure_vector_extension, register_vector

from .conftest import load_sibling

behaviour = load_sibling("store_behaviour")
pytestmark = pytest.mark.integration


async def pgvector_store(dsn: str) -> tuple[PgVectorStore, Any]:
    await ensure_vector_extension(dsn)
    pool = await create_pool(dsn, 1, 4, init=register_vector)
    store = PgVectorStore(pool)
    await store.migrate()
    return store, pool


class TestPgVectorStore(behaviour.VectorStoreBehaviour):  # type: ignore[name-defined,misc]
    @pytest.fixture
    async def store(self, fresh_database: str) -> AsyncIterator[PgVectorStore]:
        store, pool = await pgvector_store(fresh_database)
        yield store
        await pool.close()


async def test_migrating_twice_is_harmless_and_the_indexes_exist(fresh_database: str) -> None:
    store, pool = await pgvector_store(fresh_database)
    try:
        await store.migrate()
        rows = await pool.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'retriever_chunks'"
        )
        defs = {r["indexname"]: r["indexdef"] for r in rows}
        assert "hnsw" in defs["retriever_chunks_embedding"]
        assert "vector_cosine_ops" in defs["retriever_chunks_embedding"]
        assert "gin" in defs["retriever_chunks_tsv"]
    finally:
        await pool.close()


async def test_vector_search_over_all_collections_uses_the_hnsw_index(fresh_database: str) -> None:
    store, pool = await pgvector_store(fresh_database)
    try:
        await behaviour.put(store, "file:///fillers.txt", behaviour.FILLERS)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = await conn.fetch(f"EXPLAIN {store._vector_sql}", behaviour.E0, None, 3)
        assert "retriever_chunks_embedding" in "\n".join(r[0] for r in plan)
    finally:
        await pool.close()


async def test_a_failed_replace_leaves_the_old_version(fresh_database: str) -> None:
    store, pool = await pgvector_store(fresh_database)
    try:
        await behaviour.put(store, "file:///a.txt", [("old text", behaviour.E0)], version="v1")
        bad = [("new text", behaviour.E0), ("wrong dimension", [1.0, 0.0])]
        with pytest.raises(Exception, match=r"dimension|expected"):
            await behaviour.put(store, "file:///a.txt", bad, version="v2")
        hits = await store.search(behaviour.query("text", behaviour.E0, k=5))
        assert [h.text for h in hits] == ["old text"]
        (doc,) = await store.list_documents()
        assert doc.chunk_count == 1
    finally:
        await pool.close()
