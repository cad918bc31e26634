"""The VectorStore port on PostgreSQL + pgvector: `vector(384)` with an HNSW (cosine) index, a generated
`tsvector` column with a GIN index, and reciprocal rank fusion of the two rankings.

One SQL statement fetches both candidate lists with their ranks and each candidate's exact cosine
similarity: the `depth` nearest chunks by HNSW, and the `depth` best full-text matches by
`ts_rank_cd` — chunks holding every query term (after stemming and stop words), or, when no chunk
holds them all, chunks holding any. At most `fulltext_rank_limit` matching rows are ranked, so a
query made of very common words costs a bounded amount (those words barely discriminate anyway).
`domain.ranking` fuses the lists, as the in-memory store does.

A search is that one statement and nothing else (no transaction around it): the statement itself sets
`hnsw.ef_search` and `hnsw.iterative_scan` (relaxed order, so a scan filtered by collection keeps going
until it has its k rows) for its own implicit transaction, before the index scan starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cairn_bus.postgres import migrate, rows_affected, transient_errors
from cairn_retriever.domain.models import (
    ChunkRecord,
    Document,
    DocumentState,
    SearchHit,
    SearchMode,
    SearchQuery,
)
from cairn_retriever.domain.ranking import rank_hybrid, rank_vector

MIGRATION_LOCK = "cairn_retriever_migrate"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
"""HNSW build parameters: on the 100k-chunk benchmark corpus, ef_construction 64 (pgvector's default)
left recall@10 at 0.76 for ef_search 40 and 0.96 for 100; 128 gave 0.93 and 0.999 (200: 0.95 and 1.0,
for twice the build time). An existing index keeps the parameters it was built with (REINDEX to change)."""
CHUNK_COLUMNS = [
    "chunk_id",
    "document_id",
    "collection",
    "ordinal",
    "char_start",
    "char_end",
    "text",
    "content_hash",
    "embedding",
]


def ddl(dimension: int, language: str, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION) -> str:
    """The retriever's tables and indexes (idempotent)."""
    return f"""
CREATE TABLE IF NOT EXISTS retriever_documents (
    document_id  text        PRIMARY KEY,
    collection   text        NOT NULL,
    source_uri   text        NOT NULL,
    content_hash text        NOT NULL,
    chunking     text        NOT NULL,
    media_type   text        NOT NULL,
    title        text,
    char_count   integer     NOT NULL,
    chunk_count  integer     NOT NULL,
    ingested_at  timestamptz NOT NULL,
    UNIQUE (collection, source_uri)
);
CREATE TABLE IF NOT EXISTS retriever_chunks (
    chunk_id     text        PRIMARY KEY,
    document_id  text        NOT NULL REFERENCES retriever_documents ON DELETE CASCADE,
    collection   text        NOT NULL,
    ordinal      integer     NOT NULL,
    char_start   integer     NOT NULL,
    char_end     integer     NOT NULL,
    text         text        NOT NULL,
    content_hash text        NOT NULL,
    embedding    vector({int(dimension)}) NOT NULL,
    tsv          tsvector    GENERATED ALWAYS AS (to_tsvector('{language}'::regconfig, text)) STORED
);
CREATE INDEX IF NOT EXISTS retriever_chunks_document ON retriever_chunks (document_id);
CREATE INDEX IF NOT EXISTS retriever_chunks_collection ON retriever_chunks (collection);
CREATE INDEX IF NOT EXISTS retriever_chunks_tsv ON retriever_chunks USING gin (tsv);
{hnsw_index_sql(m, ef_construction)};
"""


def hnsw_index_sql(m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION) -> str:
    """The HNSW index on the embeddings (cosine distance)."""
    return (
        "CREATE INDEX IF NOT EXISTS retriever_chunks_embedding ON retriever_chunks "
        f"USING hnsw (embedding vector_cosine_ops) WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
    )


_HIT_COLUMNS = "c.chunk_id, c.document_id, c.collection, d.source_uri, c.text, c.content_hash, c.ordinal"


def _nearest(ef: str) -> str:
    """The $3 chunks nearest to $1 by the HNSW index (in the collections $2, or all), in relaxed order (the
    caller sorts by `distance`); `ef` is the parameter holding hnsw.ef_search, as text.

    The scan reads hnsw.ef_search and hnsw.iterative_scan when it fetches its first row, not when the
    statement is planned: the uncorrelated sub-select becomes a one-time filter (an InitPlan) gating the
    scan, so it sets both first, for the statement's own transaction only."""
    tune = (
        f"(SELECT set_config('hnsw.ef_search', {ef}, true) "
        "|| set_config('hnsw.iterative_scan', 'relaxed_order', true)) IS NOT NULL"
    )
    return f"""SELECT chunk_id, embedding <=> $1::vector AS distance FROM retriever_chunks
        WHERE {tune} AND ($2::text[] IS NULL OR collection = ANY($2::text[]))
        ORDER BY embedding <=> $1::vector LIMIT $3"""


def _vector_sql() -> str:
    return f"""
SELECT {_HIT_COLUMNS}, 1 - nearest.distance AS similarity
FROM ({_nearest("$4")}) nearest
JOIN retriever_chunks c ON c.chunk_id = nearest.chunk_id
JOIN retriever_documents d ON d.document_id = c.document_id
ORDER BY nearest.distance, c.chunk_id
"""


def _text_candidates(name: str, tsquery: str, only_if_empty: str | None = None) -> str:
    # at most $5 matching rows are ranked (a query of very common words matches much of the table)
    guard = f"NOT EXISTS (SELECT 1 FROM {only_if_empty}) AND " if only_if_empty else ""
    return f"""{name} AS (
    SELECT chunk_id, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank FROM (
        SELECT chunk_id, ts_rank_cd(tsv, {tsquery}) AS score FROM (
            SELECT chunk_id, tsv FROM retriever_chunks
            WHERE {guard}tsv @@ {tsquery} AND ($2::text[] IS NULL OR collection = ANY($2::text[]))
            LIMIT $5
        ) matching
        ORDER BY score DESC, chunk_id LIMIT $3
    ) ranked
)"""


def _hybrid_sql(language: str) -> str:
    every_term = f"plainto_tsquery('{language}'::regconfig, $4)"
    # plainto_tsquery ANDs the terms; the replace ORs them
    any_term = f"replace(plainto_tsquery('{language}'::regconfig, $4)::text, '&', '|')::tsquery"
    # a vector candidate's similarity is the distance its list was ranked by (computed once); a chunk found
    # by full text only gets its own
    return f"""
WITH vec AS (
    SELECT chunk_id, distance, row_number() OVER (ORDER BY distance, chunk_id) AS rank
    FROM ({_nearest("$6")}) nearest
), {_text_candidates("every_term", every_term)}, {_text_candidates("any_term", any_term, "every_term")},
txt AS (SELECT * FROM every_term UNION ALL SELECT * FROM any_term)
SELECT {_HIT_COLUMNS}, 1 - coalesce(vec.distance, c.embedding <=> $1::vector) AS similarity,
    vec.rank AS vector_rank, txt.rank AS text_rank
FROM vec FULL JOIN txt ON txt.chunk_id = vec.chunk_id
JOIN retriever_chunks c ON c.chunk_id = coalesce(vec.chunk_id, txt.chunk_id)
JOIN retriever_documents d ON d.document_id = c.document_id
"""


def _hit(row: Any) -> SearchHit:
    return SearchHit(
        chunk_id=row["chunk_id"],
        document_id=row["document_id"],
        collection=row["collection"],
        source_uri=row["source_uri"],
        text=row["text"],
        content_hash=row["content_hash"],
        ordinal=row["ordinal"],
        similarity=float(row["similarity"]),
        fused=float(row["similarity"]),
    )


def _document(row: Any) -> Document:
    return Document(
        document_id=row["document_id"],
        collection=row["collection"],
        source_uri=row["source_uri"],
        content_hash=row["content_hash"],
        chunking=row["chunking"],
        media_type=row["media_type"],
        title=row["title"],
        char_count=row["char_count"],
        chunk_count=row["chunk_count"],
        ingested_at=row["ingested_at"],
    )


class PgVectorStore:
    """VectorStore on an asyncpg pool whose connections have the `vector` codec (`cairn_bus.postgres.create_pool`
    with `init=adapters.postgres.register_vector`)."""

    def __init__(
        self,
        pool: Any,
        *,
        dimension: int = 384,
        language: str = "english",
        ef_search: int = 100,
        fulltext_rank_limit: int = 2000,
    ) -> None:
        self.pool = pool
        self.dimension = dimension
        self.language = language
        self.ef_search = ef_search
        self.fulltext_rank_limit = fulltext_rank_limit
        self._vector_sql = _vector_sql()
        self._hybrid_sql = _hybrid_sql(language)

    async def migrate(self) -> None:
        """Create the tables and indexes if missing (serialised across replicas by an advisory lock)."""
        await migrate(self.pool, MIGRATION_LOCK, ddl(self.dimension, self.language))

    async def document_state(self, collection: str, source_uri: str) -> DocumentState | None:
        with transient_errors("read document state"):
            row = await self.pool.fetchrow(
                "SELECT content_hash, chunking FROM retriever_documents WHERE collection = $1 AND source_uri = $2",
                collection,
                source_uri,
            )
        return DocumentState(row["content_hash"], row["chunking"]) if row else None

    async def replace_document(self, document: Document, chunks: Sequence[ChunkRecord]) -> None:
        records = [
            (
                c.chunk_id,
                document.document_id,
                document.collection,
                c.ordinal,
                c.char_start,
                c.char_end,
                c.text,
                c.content_hash,
                c.embedding,
            )
            for c in chunks
        ]
        with transient_errors("replace document"):
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """
                    INSERT INTO retriever_documents (document_id, collection, source_uri, content_hash, chunking,
                        media_type, title, char_count, chunk_count, ingested_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    ON CONFLICT (document_id) DO UPDATE SET content_hash = EXCLUDED.content_hash,
                        chunking = EXCLUDED.chunking, media_type = EXCLUDED.media_type, title = EXCLUDED.title,
                        char_count = EXCLUDED.char_count, chunk_count = EXCLUDED.chunk_count,
                        ingested_at = EXCLUDED.ingested_at
                    """,
                    document.document_id,
                    document.collection,
                    document.source_uri,
                    document.content_hash,
                    document.chunking,
                    document.media_type,
                    document.title,
                    document.char_count,
                    document.chunk_count,
                    document.ingested_at,
                )
                await conn.execute(
                    "DELETE FROM retriever_chunks WHERE document_id = $1", document.document_id
                )
                if records:
                    await conn.copy_records_to_table(
                        "retriever_chunks", records=records, columns=CHUNK_COLUMNS
                    )

    async def delete_document(self, source_uri: str, collection: str | None = None) -> int:
        with transient_errors("delete document"):
            status = await self.pool.execute(
                "DELETE FROM retriever_documents WHERE source_uri = $1 AND ($2::text IS NULL OR collection = $2)",
                source_uri,
                collection,
            )
        return rows_affected(status)

    async def get_document(self, document_id: str) -> Document | None:
        with transient_errors("read document"):
            row = await self.pool.fetchrow(
                "SELECT * FROM retriever_documents WHERE document_id = $1", document_id
            )
        return _document(row) if row else None

    async def list_documents(self, collection: str | None = None) -> list[Document]:
        with transient_errors("list documents"):
            rows = await self.pool.fetch(
                "SELECT * FROM retriever_documents WHERE $1::text IS NULL OR collection = $1 "
                "ORDER BY collection, source_uri",
                collection,
            )
        return [_document(r) for r in rows]

    async def search(self, query: SearchQuery, *, exact: bool = False) -> list[SearchHit]:
        """See VectorStore.search. `exact` disables the HNSW index (a sequential scan: exact neighbours),
        for measuring recall."""
        depth = query.k if query.mode is SearchMode.VECTOR else max(query.depth, query.k)
        ef = max(self.ef_search, depth)
        collections = list(query.collections) if query.collections is not None else None
        args: tuple[Any, ...]
        if query.mode is SearchMode.VECTOR:
            sql, args = self._vector_sql, (query.embedding, collections, depth, str(ef))
        else:
            limit = max(self.fulltext_rank_limit, depth)
            sql, args = self._hybrid_sql, (query.embedding, collections, depth, query.text, limit, str(ef))
        with transient_errors("search"):
            if exact:
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute("SET LOCAL enable_indexscan = off")
                    rows = await conn.fetch(sql, *args)
            else:
                rows = await self.pool.fetch(sql, *args)
        if query.mode is SearchMode.VECTOR:
            return rank_vector([_hit(r) for r in rows], query)
        hits = {r["chunk_id"]: _hit(r) for r in rows}
        vector_ids = [
            r["chunk_id"] for r in sorted(rows, key=lambda r: r["vector_rank"] or 0) if r["vector_rank"]
        ]
        text_ids = [r["chunk_id"] for r in sorted(rows, key=lambda r: r["text_rank"] or 0) if r["text_rank"]]
        return rank_hybrid(hits, vector_ids, text_ids, query)

    async def count_chunks(self) -> int:
        """How many chunks are stored (all collections)."""
        with transient_errors("count chunks"):
            return int(await self.pool.fetchval("SELECT count(*) FROM retriever_chunks"))
