"""API keys in PostgreSQL: table `auth_api_keys` (hashes only; revoked keys kept with `revoked_at`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from cairn_auth.domain.errors import DuplicateKeyError, KeyNotFoundError
from cairn_auth.domain.keys import KeyRecord
from cairn_auth.domain.principals import Role
from cairn_bus.postgres import migrate

__all__ = ["DDL", "PostgresKeyStore"]

MIGRATION_LOCK = 0x0CA1_A071  # pg_advisory_xact_lock key: replicas starting together migrate one by one

DDL = """
CREATE TABLE IF NOT EXISTS auth_api_keys (
    key_id       text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    tenant       text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    name         text        NOT NULL,
    secret_hash  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL,
    revoked_at   timestamptz,
    CHECK (tenant <> '*' OR role = 'admin')
);
CREATE INDEX IF NOT EXISTS auth_api_keys_tenant ON auth_api_keys (tenant, created_at);
"""

_COLUMNS = "key_id, tenant, role, name, secret_hash, created_at, created_by, revoked_at"


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        tenant=row["tenant"],
        role=Role(row["role"]),
        name=row["name"],
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
    )


class PostgresKeyStore:
    """The KeyStore in PostgreSQL, on a pool from `cairn_bus.postgres.create_pool`. Call `migrate()`
    once before use (idempotent)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        """Create the table and index if they do not exist (replicas starting together migrate one by
        one)."""
        await migrate(self.pool, MIGRATION_LOCK, DDL)

    async def add(self, record: KeyRecord) -> None:
        try:
            await self.pool.execute(
                f"INSERT INTO auth_api_keys ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                record.key_id,
                record.tenant,
                record.role.value,
                record.name,
                record.secret_hash,
                record.created_at,
                record.created_by,
                record.revoked_at,
            )
        except asyncpg.UniqueViolationError:
            raise DuplicateKeyError(f"API key {record.key_id} exists already") from None

    async def get(self, key_id: str) -> KeyRecord | None:
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM auth_api_keys WHERE key_id = $1", key_id)
        return None if row is None else _record(row)

    async def keys(self, tenant: str | None = None) -> list[KeyRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM auth_api_keys WHERE $1::text IS NULL OR tenant = $1 "
            "ORDER BY created_at, key_id",
            tenant,
        )
        return [_record(row) for row in rows]

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord:
        row = await self.pool.fetchrow(
            f"UPDATE auth_api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE key_id = $1 "
            f"RETURNING {_COLUMNS}",
            key_id,
            at,
        )
        if row is None:
            raise KeyNotFoundError(f"no API key {key_id}")
        return _record(row)
