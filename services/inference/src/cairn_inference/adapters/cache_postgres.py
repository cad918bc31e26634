"""The response cache in the inference service's PostgreSQL (`inference_response_cache`), shared by
every replica.

An entry is unexpired while `now < expires_at`; `put` is one statement, so replicas storing answers
for the same key at once keep the first unexpired one. With a keyring (`cairn_auth.encryption`) the
answer text, the tenant's content, is stored sealed under the tenant's data key; after the tenant's
erasure its entries read as misses (and are deleted when read). Without one the text is stored as it is, and a sealed entry met
then reads as a miss too. A database outage raises `TransientError`.

An entry stored for the semantic cache also has its scope, its question's embedding (`real[]`, not
sealed: it is deleted with the tenant's entries at erasure) and its signature (digests only). `nearest` compares the newest
`SEMANTIC_CANDIDATES` unexpired entries of the scope in this process; a scope is narrow (one tenant,
prompt version, context, model and parameters), so that is usually all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cairn_auth.encryption import Keyring, PostgresTenantKeyStore, is_sealed
from cairn_bus.postgres import guarded, migrate, rows_affected
from cairn_inference.domain.cache import CachedAnswer, best_match
from cairn_inference.domain.questions import compatible

__all__ = ["DDL", "PostgresResponseCache"]

MIGRATION_LOCK = "cairn_inference_response_cache_migrate"
DDL = (
    """
    CREATE TABLE IF NOT EXISTS inference_response_cache (
        key           text        PRIMARY KEY,
        tenant        text        NOT NULL,
        request_id    text        NOT NULL,
        text          text        NOT NULL,
        finish_reason text        NOT NULL,
        input_tokens  integer     NOT NULL,
        output_tokens integer     NOT NULL,
        model         text        NOT NULL,
        created_at    timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS inference_response_cache_expires_at ON inference_response_cache (expires_at)",
    # the semantic cache (added later: tables made before get the columns here)
    "ALTER TABLE inference_response_cache ADD COLUMN IF NOT EXISTS scope text",
    "ALTER TABLE inference_response_cache ADD COLUMN IF NOT EXISTS vector real[]",
    "ALTER TABLE inference_response_cache ADD COLUMN IF NOT EXISTS signature text",
    "CREATE INDEX IF NOT EXISTS inference_response_cache_scope "
    "ON inference_response_cache (tenant, scope, created_at DESC) WHERE scope IS NOT NULL",
)
SEMANTIC_CANDIDATES = 2000
"""The most entries of one scope `nearest` compares (the newest)."""
_COLUMNS = (
    "key, tenant, request_id, text, finish_reason, input_tokens, output_tokens, model, created_at, expires_at, "
    "scope, vector, signature"
)
_PUT = (
    f"INSERT INTO inference_response_cache ({_COLUMNS}) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
    "ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS.split(", ")[1:])
    + " WHERE inference_response_cache.expires_at <= EXCLUDED.created_at"  # the stored one expired
)


class PostgresResponseCache:
    """`ResponseCache` on an asyncpg pool (`cairn_bus.postgres.create_pool`); `keyring`: seals the
    answer text under each tenant's key (None: stored as it is)."""

    def __init__(self, pool: Any, keyring: Keyring | None = None) -> None:
        self.pool = pool
        self.keyring = keyring

    async def migrate(self) -> None:
        """Create the table and its index when missing (replicas starting together migrate one by
        one), and the keyring's `tenant_keys` table when there is a keyring."""
        await migrate(self.pool, MIGRATION_LOCK, *DDL)
        if self.keyring is not None:
            await PostgresTenantKeyStore(self.pool).migrate()

    @guarded
    async def get(self, key: str, tenant: str, now: datetime) -> CachedAnswer | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM inference_response_cache WHERE key = $1 AND tenant = $2 AND expires_at > $3",
            key,
            tenant,
            now,
        )
        if row is None:
            return None
        text: str = row["text"]
        if is_sealed(text):
            if self.keyring is None:
                return None  # sealed, and nothing here can open it
            [plain] = await self.keyring.open_many([text])
            if plain is None:  # the tenant was erased: forget the entry, so a new answer can take its key
                await self.pool.execute(
                    "DELETE FROM inference_response_cache WHERE key = $1 AND text = $2", key, row["text"]
                )
                return None
            text = plain.decode("utf-8")
        return CachedAnswer(
            key=row["key"],
            tenant=row["tenant"],
            request_id=row["request_id"],
            text=text,
            finish_reason=row["finish_reason"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            model=row["model"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            scope=row["scope"],
            vector=None if row["vector"] is None else tuple(row["vector"]),
            signature=row["signature"],
        )

    @guarded
    async def nearest(
        self, scope: str, tenant: str, vector: Sequence[float], signature: str, now: datetime
    ) -> tuple[CachedAnswer, float] | None:
        rows = await self.pool.fetch(
            "SELECT key, vector, signature FROM inference_response_cache WHERE tenant = $1 AND scope = $2 "
            "AND expires_at > $3 AND vector IS NOT NULL ORDER BY created_at DESC LIMIT $4",
            tenant,
            scope,
            now,
            SEMANTIC_CANDIDATES,
        )
        match = best_match(
            vector, ((row["key"], row["vector"]) for row in rows if compatible(row["signature"], signature))
        )
        if match is None:
            return None
        found = await self.get(match[0], tenant, now)
        return None if found is None else (found, match[1])

    @guarded
    async def put(self, answer: CachedAnswer) -> None:
        text = answer.text
        if self.keyring is not None:
            text = await self.keyring.seal(answer.tenant, text.encode("utf-8"))
        await self.pool.execute(
            _PUT,
            answer.key,
            answer.tenant,
            answer.request_id,
            text,
            answer.finish_reason,
            answer.input_tokens,
            answer.output_tokens,
            answer.model,
            answer.created_at,
            answer.expires_at,
            answer.scope,
            None if answer.vector is None else list(answer.vector),
            answer.signature,
        )

    @guarded
    async def purge(self, before: datetime) -> int:
        done = await self.pool.execute("DELETE FROM inference_response_cache WHERE expires_at < $1", before)
        return rows_affected(done)

    @guarded
    async def erase_tenant(self, tenant: str) -> int:
        """Delete the tenant's entries and destroy this service's key for it (sealed copies in backups
        can then never be opened)."""
        done = await self.pool.execute("DELETE FROM inference_response_cache WHERE tenant = $1", tenant)
        if self.keyring is not None:
            await self.keyring.erase(tenant)
        return rows_affected(done)
