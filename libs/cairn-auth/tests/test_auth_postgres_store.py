"""The KeyStore behaviour suite against PostgreSQL, plus what the table itself enforces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cairn_auth.adapters.postgres import PostgresKeyStore
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration

suite: Any = load_suite(Path(__file__).with_name("key_store_behaviour.py"))


@pytest.fixture
async def pg_store(pool: Any) -> PostgresKeyStore:
    store = PostgresKeyStore(pool)
    await store.migrate()
    await store.migrate()  # idempotent
    return store


class TestPostgresKeyStore(suite.KeyStoreBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def store(self, pg_store: PostgresKeyStore) -> PostgresKeyStore:
        return pg_store


async def test_only_hashes_are_stored_and_the_table_guards_platform_keys(
    pg_store: PostgresKeyStore, pool: Any
) -> None:
    await pg_store.add(suite.record())
    row = await pool.fetchrow("SELECT * FROM auth_api_keys")
    assert set(row.keys()) == {
        "key_id",
        "tenant",
        "role",
        "name",
        "secret_hash",
        "created_at",
        "created_by",
        "revoked_at",
    }
    assert row["secret_hash"].startswith("sha256$")
    assert "s3cret" not in row["secret_hash"]
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO auth_api_keys (key_id, tenant, role, name, secret_hash, created_by) "
            "VALUES ('00000000000e', '*', 'viewer', 'x', 'h', 'ana')"
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO auth_api_keys (key_id, tenant, role, name, secret_hash, created_by) "
            "VALUES ('00000000000f', 'acme', 'root', 'x', 'h', 'ana')"
        )
    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert [t["tablename"] for t in tables] == ["auth_api_keys"]
