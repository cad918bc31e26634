"""The PostgreSQL response cache: the behaviour suite clear and sealed, replicas migrating together,
no plaintext at rest, erased tenants, outages transient."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn_auth.encryption import SEALED_PREFIX, Keyring, MasterKey, PostgresTenantKeyStore, new_master_key
from cairn_bus import TransientError
from cairn_bus.postgres import create_pool
from cairn_inference.adapters.cache_postgres import PostgresResponseCache
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration

behaviour = load_suite(Path(__file__).with_name("cache_behaviour.py"))
ResponseCacheBehaviour: Any = behaviour.ResponseCacheBehaviour
answer = behaviour.answer
NOW = behaviour.NOW


def keyring_on(pool: Any) -> Keyring:
    return Keyring(MasterKey.from_text(new_master_key()), PostgresTenantKeyStore(pool))


@pytest.fixture
async def db_pool(fresh_database: str) -> AsyncIterator[Any]:
    pool = await create_pool(fresh_database, 1, 4)  # room for concurrent puts
    yield pool
    await pool.close()


@pytest.fixture
async def sealed(db_pool: Any) -> PostgresResponseCache:
    cache = PostgresResponseCache(db_pool, keyring_on(db_pool))
    await cache.migrate()
    return cache


class TestPostgresResponseCache(ResponseCacheBehaviour):  # type: ignore[misc]
    @pytest.fixture
    async def cache(self, db_pool: Any) -> PostgresResponseCache:
        cache = PostgresResponseCache(db_pool)
        await cache.migrate()
        await cache.migrate()  # idempotent
        return cache


class TestSealedPostgresResponseCache(ResponseCacheBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def cache(self, sealed: PostgresResponseCache) -> PostgresResponseCache:
        return sealed


async def test_replicas_starting_together_migrate_one_by_one(db_pool: Any) -> None:
    keyring = keyring_on(db_pool)
    await asyncio.gather(*(PostgresResponseCache(db_pool, keyring).migrate() for _ in range(4)))
    tables = await db_pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert [t["tablename"] for t in tables] == ["inference_response_cache", "tenant_keys"]
    indexes = await db_pool.fetch(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'inference_response_cache'"
    )
    assert any("(expires_at)" in i["indexdef"] for i in indexes)


async def test_sealed_entries_hold_no_plaintext(sealed: PostgresResponseCache, db_pool: Any) -> None:
    await sealed.put(answer())
    rows = await db_pool.fetch("SELECT * FROM inference_response_cache")
    assert len(rows) == 1
    assert rows[0]["text"].startswith(SEALED_PREFIX)
    assert all("Refunds" not in str(value) for value in rows[0].values())
    assert await sealed.get("exact:k1", "acme", NOW) == answer()


async def test_without_a_keyring_the_text_is_stored_as_it_is(db_pool: Any) -> None:
    cache = PostgresResponseCache(db_pool)
    await cache.migrate()
    await cache.put(answer())
    assert await db_pool.fetchval("SELECT text FROM inference_response_cache") == answer().text


async def test_a_sealed_entry_read_without_a_keyring_is_a_miss(
    sealed: PostgresResponseCache, db_pool: Any
) -> None:
    await sealed.put(answer())
    assert await PostgresResponseCache(db_pool).get("exact:k1", "acme", NOW) is None


async def test_an_erased_tenants_entries_read_as_misses(sealed: PostgresResponseCache) -> None:
    assert sealed.keyring is not None
    await sealed.put(answer())
    await sealed.put(answer("exact:k2", tenant="globex"))
    assert await sealed.keyring.erase("acme") == 1
    assert await sealed.get("exact:k1", "acme", NOW) is None
    assert await sealed.get("exact:k2", "globex", NOW) == answer("exact:k2", tenant="globex")


async def test_an_erased_entry_read_makes_room_for_a_new_answer(sealed: PostgresResponseCache) -> None:
    assert sealed.keyring is not None
    await sealed.put(answer())
    await sealed.keyring.erase("acme")
    assert await sealed.get("exact:k1", "acme", NOW) is None
    fresh = answer(minutes=1, request_id="req-2", text="sent after the erasure")
    await sealed.put(fresh)  # sealed under the tenant's new key
    assert await sealed.get("exact:k1", "acme", NOW + timedelta(minutes=2)) == fresh


async def test_an_erased_tenants_entries_are_still_purged(sealed: PostgresResponseCache) -> None:
    assert sealed.keyring is not None
    await sealed.put(answer())
    await sealed.keyring.erase("acme")
    assert await sealed.purge(NOW + behaviour.TTL + timedelta(seconds=1)) == 1


async def test_an_unreachable_database_is_a_transient_error(db_pool: Any) -> None:
    cache = PostgresResponseCache(db_pool)
    await cache.migrate()
    await db_pool.close()
    with pytest.raises(TransientError):
        await cache.get("exact:k1", "acme", NOW)
    with pytest.raises(TransientError):
        await cache.put(answer())
    with pytest.raises(TransientError):
        await cache.purge(NOW)
