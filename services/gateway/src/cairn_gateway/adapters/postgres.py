"""The gateway's table of idempotent requests in its own PostgreSQL database.

Every replica shares it: a retry may reach another replica than its first try. A database outage
raises `TransientError` (the API answers 503).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn_bus.postgres import guarded, migrate, rows_affected
from cairn_gateway.ports import StoredRequest

MIGRATION_LOCK = "cairn_gateway_migrate"
DDL = (
    """
    CREATE TABLE IF NOT EXISTS gateway_requests (
        request_id  text PRIMARY KEY,
        tenant      text NOT NULL,
        fingerprint text NOT NULL,
        asked_model text NOT NULL,
        max_tokens  integer,
        http_status integer,
        body        jsonb,
        final       boolean NOT NULL DEFAULT false,
        claimed_at  timestamptz NOT NULL,
        answered_at timestamptz
    )
    """,
    "CREATE INDEX IF NOT EXISTS gateway_requests_claimed_at ON gateway_requests (claimed_at)",
    "CREATE INDEX IF NOT EXISTS gateway_requests_unfinished ON gateway_requests (claimed_at) WHERE NOT final",
)
_COLUMNS = "request_id, tenant, fingerprint, asked_model, max_tokens, http_status, body, final, claimed_at"


def _row(record: Any) -> StoredRequest:
    return StoredRequest(
        request_id=record["request_id"],
        tenant=record["tenant"],
        fingerprint=record["fingerprint"],
        asked_model=record["asked_model"],
        max_tokens=record["max_tokens"],
        claimed_at=record["claimed_at"],
        http_status=record["http_status"],
        body=record["body"],
        final=record["final"],
    )


class PostgresAnsweredRequests:
    """`AnsweredRequests` in the `gateway_requests` table (a pool made by `cairn_bus.postgres.create_pool`,
    which reads and writes jsonb as Python objects)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        """Create the table and its indexes when missing (replicas starting together migrate one by one)."""
        await migrate(self.pool, MIGRATION_LOCK, *DDL)

    @guarded
    async def claim(self, request: StoredRequest) -> StoredRequest | None:
        async with self.pool.acquire() as conn:
            inserted = await conn.fetchval(
                "INSERT INTO gateway_requests (request_id, tenant, fingerprint, asked_model, max_tokens, "
                "claimed_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id) DO NOTHING RETURNING true",
                request.request_id,
                request.tenant,
                request.fingerprint,
                request.asked_model,
                request.max_tokens,
                request.claimed_at,
            )
            if inserted:
                return None
            found = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM gateway_requests WHERE request_id = $1", request.request_id
            )
        return None if found is None else _row(found)

    @guarded
    async def answer(
        self, request_id: str, http_status: int, body: dict[str, Any], final: bool, now: datetime
    ) -> None:
        await self.pool.execute(
            "UPDATE gateway_requests SET http_status = $2, body = $3, final = $4, answered_at = $5 "
            "WHERE request_id = $1 AND NOT final",
            request_id,
            http_status,
            body,
            final,
            now,
        )

    @guarded
    async def unfinished(self, since: datetime) -> list[StoredRequest]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM gateway_requests WHERE NOT final AND claimed_at >= $1 "
            "ORDER BY claimed_at",
            since,
        )
        return [_row(r) for r in rows]

    @guarded
    async def purge(self, before: datetime) -> int:
        done = await self.pool.execute("DELETE FROM gateway_requests WHERE claimed_at < $1", before)
        return rows_affected(done)
