"""The VectorStore behaviour suite against PostgreSQL + pgvector (a fresh database per test)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_bus.postgres import create_pool
from cairn_retriever.adapters.pgvector import PgVectorStore
from cairn_retriever.adapters.postgres import ensure_vector_extension, register_vector
from cairn_retriever.domain.models import SearchMode

from .conftest import load_sibling

behaviour = load_sibling("store_behaviour")
pytestmark = pytest.mark.integration


async def pgvector_store(
    dsn: str, server_settings: dict[str, str] | None = None, **options: Any
) -> tuple[PgVectorStore, Any]:
    await ensure_vector_extension(dsn)
    pool = await create_pool(dsn, 1, 4, init=register_vector, server_settings=server_settings)
    store = PgVectorStore(pool, **options)
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
            plan = await conn.fetch(f"EXPLAIN {store._vector_sql}", behaviour.E0, None, 3, "40")
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


async def test_a_search_filtered_to_a_small_collection_still_gets_k_hits(fresh_database: str) -> None:
    # 3 chunks of "small" among 300 of "big", all drawn alike: the HNSW scan's first ef_search (here 10)
    # candidates hold almost surely none of the 3, so only the iterative scan, which the search statement
    # sets itself before the scan starts, finds them (with sequential scans off and no collection index,
    # the planner has nothing but the HNSW index to turn to)
    store, pool = await pgvector_store(fresh_database, {"enable_seqscan": "off"}, ef_search=10)
    try:
        await pool.execute("DROP INDEX retriever_chunks_collection")
        rng = random.Random(7)

        def drawn(label: str, n: int) -> list[tuple[str, list[float]]]:
            return [
                (f"{label} {i}", behaviour.vec(*((d, rng.gauss(0, 1)) for d in range(8)))) for i in range(n)
            ]

        await behaviour.put(store, "file:///big.txt", drawn("lorem ipsum", 300), collection="big")
        await behaviour.put(store, "file:///small.txt", drawn("far away", 3), collection="small")
        async with pool.acquire() as conn:
            plan = await conn.fetch(f"EXPLAIN {store._vector_sql}", behaviour.E0, ["small"], 3, "10")
        assert "retriever_chunks_embedding" in "\n".join(r[0] for r in plan)
        for mode in SearchMode:
            hits = await store.search(
                behaviour.query("far away", behaviour.E0, k=3, mode=mode, collection="small")
            )
            assert sorted(h.text for h in hits) == ["far away 0", "far away 1", "far away 2"], mode
            assert all(h.vector_rank is not None for h in hits), mode
    finally:
        await pool.close()


async def test_the_scan_settings_last_only_for_the_search_statement(fresh_database: str) -> None:
    store, pool = await pgvector_store(fresh_database)
    try:
        await behaviour.put(store, "file:///fillers.txt", behaviour.FILLERS)
        async with pool.acquire() as conn:
            before = await conn.fetchval("SELECT current_setting('hnsw.ef_search')")
            rows = await conn.fetch(store._vector_sql, behaviour.E0, None, 3, "123")
            assert len(rows) == 3
            assert await conn.fetchval("SELECT current_setting('hnsw.ef_search')") == before != "123"
            assert await conn.fetchval("SELECT current_setting('hnsw.iterative_scan')") == "off"
    finally:
        await pool.close()
