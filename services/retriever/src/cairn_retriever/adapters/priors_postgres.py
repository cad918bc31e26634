"""The PriorStore port on PostgreSQL (a `cairn_bus.postgres.create_pool` pool: jsonb as Python objects): `retriever_served` (what each request was served, purged after
the retention) and `retriever_chunk_votes` (per tenant and chunk key, counts added atomically)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cairn_bus.postgres import migrate, rows_affected, transient_errors
from cairn_retriever.domain.priors import ChunkKey, ServedChunk, ServedContext, Votes

MIGRATION_LOCK = "cairn_retriever_priors_migrate"
DDL = """
CREATE TABLE IF NOT EXISTS retriever_served (
    tenant      text        NOT NULL,
    request_id  text        NOT NULL,
    served      jsonb       NOT NULL,
    candidates  jsonb       NOT NULL,
    served_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, request_id)
);
CREATE INDEX IF NOT EXISTS retriever_served_at ON retriever_served (served_at);
CREATE TABLE IF NOT EXISTS retriever_chunk_votes (
    tenant        text    NOT NULL,
    document_id   text    NOT NULL,
    content_hash  text    NOT NULL,
    up            integer NOT NULL DEFAULT 0,
    down          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, document_id, content_hash)
);
"""


def _chunks(chunks: Sequence[ServedChunk]) -> list[list[str]]:
    return [[c.document_id, c.content_hash, c.source_uri] for c in chunks]


def _unchunks(raw: Any) -> tuple[ServedChunk, ...]:
    items = json.loads(raw) if isinstance(raw, str) else raw  # a pool without the jsonb codec gives text
    return tuple(ServedChunk(*item) for item in items)


class PostgresPriorStore:
    """PriorStore on an asyncpg pool (the retriever's)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        """Create the tables if missing (serialised across replicas by an advisory lock)."""
        await migrate(self.pool, MIGRATION_LOCK, DDL)

    async def record_served(self, served: ServedContext, conn: Any = None) -> None:
        with transient_errors("record served chunks"):
            await (conn or self.pool).execute(
                "INSERT INTO retriever_served (tenant, request_id, served, candidates, served_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                served.tenant,
                served.request_id,
                _chunks(served.served),
                _chunks(served.candidates),
                served.served_at,
            )

    async def served(self, tenant: str, request_id: str) -> ServedContext | None:
        with transient_errors("read served chunks"):
            row = await self.pool.fetchrow(
                "SELECT served, candidates, served_at "
                "FROM retriever_served WHERE tenant = $1 AND request_id = $2",
                tenant,
                request_id,
            )
        if row is None:
            return None
        return ServedContext(
            tenant, request_id, _unchunks(row["served"]), _unchunks(row["candidates"]), row["served_at"]
        )

    async def purge_served(self, before: datetime) -> int:
        with transient_errors("purge served chunks"):
            status = await self.pool.execute("DELETE FROM retriever_served WHERE served_at < $1", before)
        return rows_affected(status)

    async def add_votes(self, tenant: str, votes: Mapping[ChunkKey, Votes], conn: Any = None) -> None:
        if not votes:
            return
        rows = [(tenant, k.document_id, k.content_hash, v.up, v.down) for k, v in sorted(votes.items())]
        with transient_errors("add chunk votes"):
            await (conn or self.pool).executemany(
                "INSERT INTO retriever_chunk_votes (tenant, document_id, content_hash, up, down) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, document_id, content_hash) DO UPDATE "
                "SET up = retriever_chunk_votes.up + EXCLUDED.up, "
                "down = retriever_chunk_votes.down + EXCLUDED.down",
                rows,
            )

    async def votes(self, tenant: str, keys: Sequence[ChunkKey]) -> dict[ChunkKey, Votes]:
        if not keys:
            return {}
        with transient_errors("read chunk votes"):
            rows = await self.pool.fetch(
                "SELECT v.document_id, v.content_hash, v.up, v.down FROM retriever_chunk_votes v "
                "JOIN unnest($2::text[], $3::text[]) AS k(document_id, content_hash) "
                "ON v.document_id = k.document_id AND v.content_hash = k.content_hash WHERE v.tenant = $1",
                tenant,
                [k.document_id for k in keys],
                [k.content_hash for k in keys],
            )
        return {ChunkKey(r["document_id"], r["content_hash"]): Votes(r["up"], r["down"]) for r in rows}
