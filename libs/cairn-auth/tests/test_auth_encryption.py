"""Envelope encryption per tenant: round trips, isolation between tenants, erasure, the keyring table."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_auth.encryption import (
    ERASED,
    SEALED_PREFIX,
    EncryptionError,
    InMemoryTenantKeyStore,
    Keyring,
    MasterKey,
    PostgresTenantKeyStore,
    TenantErasedError,
    TenantKeyStore,
    UnknownKeyError,
    is_sealed,
    new_master_key,
)
from cairn_auth.secrets import SecretNotFoundError
from cairn_bus.postgres import create_pool, transaction


def keyring(store: TenantKeyStore | None = None, master: str | None = None, **kw: Any) -> Keyring:
    return Keyring(MasterKey.from_text(master or new_master_key()), store or InMemoryTenantKeyStore(), **kw)


async def test_round_trip_is_sealed_text_naming_the_key() -> None:
    ring = keyring()
    token = await ring.seal("acme", "Hello, wörld".encode())
    assert is_sealed(token)
    assert token.startswith(SEALED_PREFIX)
    assert "Hello" not in token
    assert await ring.open(token) == "Hello, wörld".encode()
    key_id = token[len(SEALED_PREFIX) :].split(":")[0]
    assert (await ring.store.active("acme")) is not None
    assert (await ring.store.active("acme")).key_id == key_id  # type: ignore[union-attr]


async def test_same_plaintext_seals_differently() -> None:
    ring = keyring()
    a, b = await ring.seal_many([("acme", b"same"), ("acme", b"same")])
    assert a != b
    assert await ring.open_many([a, b]) == [b"same", b"same"]


async def test_one_key_per_tenant_and_tenants_do_not_share_keys() -> None:
    ring = keyring()
    a1, b1, a2 = await ring.seal_many([("acme", b"x"), ("globex", b"y"), ("acme", b"z")])
    key = lambda t: t[len(SEALED_PREFIX) :].split(":")[0]  # noqa: E731
    assert key(a1) == key(a2) != key(b1)


async def test_one_tenants_key_cannot_open_anothers_ciphertext() -> None:
    ring = keyring()
    acme = await ring.seal("acme", b"acme secret")
    globex = await ring.seal("globex", b"globex secret")
    # a ciphertext moved under the other tenant's key id fails authentication
    acme_key = acme[len(SEALED_PREFIX) :].split(":")[0]
    globex_key, globex_body = globex[len(SEALED_PREFIX) :].split(":")
    forged = f"{SEALED_PREFIX}{acme_key}:{globex_body}"
    with pytest.raises(EncryptionError, match="fails authentication"):
        await ring.open(forged)
    assert globex_key != acme_key


async def test_tampered_ciphertext_is_refused() -> None:
    ring = keyring()
    token = await ring.seal("acme", b"payload")
    head, body = token.rsplit(":", 1)
    blob = bytearray(base64.urlsafe_b64decode(body))
    blob[-1] ^= 1
    with pytest.raises(EncryptionError):
        await ring.open(f"{head}:{base64.urlsafe_b64encode(bytes(blob)).decode()}")
    with pytest.raises(EncryptionError, match="malformed"):
        await ring.open(f"{SEALED_PREFIX}nokey")
    with pytest.raises(EncryptionError, match="not a sealed value"):
        await ring.open("plain text")


async def test_a_key_never_held_is_unknown() -> None:
    token = await keyring().seal("acme", b"x")
    with pytest.raises(UnknownKeyError):
        await keyring().open(token)


async def test_another_master_key_cannot_unwrap_the_data_keys() -> None:
    store = InMemoryTenantKeyStore()
    token = await keyring(store).seal("acme", b"x")
    with pytest.raises(EncryptionError, match="cannot be unwrapped"):
        await keyring(store).open(token)


async def test_erase_makes_the_tenants_content_unreadable_and_is_idempotent() -> None:
    store = InMemoryTenantKeyStore()
    master = new_master_key()
    ring = keyring(store, master)
    acme, globex = await ring.seal_many([("acme", b"acme text"), ("globex", b"globex text")])
    assert await ring.erase("acme") == 1
    assert await ring.erase("acme") == 0
    with pytest.raises(TenantErasedError) as erased:
        await ring.open(acme)
    assert erased.value.tenant == "acme"
    assert await ring.open_many([acme, globex]) == [None, b"globex text"]
    # a fresh process with the same master key and keyring cannot read it either
    assert await keyring(store, master).open_many([acme]) == [None]
    assert all(k.wrapped is None for k in store.keys.values() if k.tenant == "acme")
    # new content of the tenant is sealed under a new key; the old one stays erased
    later = await ring.seal("acme", b"after erasure")
    assert await ring.open(later) == b"after erasure"
    assert await ring.open_many([acme]) == [None]
    assert ERASED == "[erased]"


async def test_an_erasure_by_another_replica_reaches_this_cache_after_its_ttl() -> None:
    store = InMemoryTenantKeyStore()
    master = new_master_key()
    now = [0.0]
    ring = keyring(store, master, cache_ttl_s=30, clock=lambda: now[0])
    token = await ring.seal("acme", b"x")
    assert await keyring(store, master).erase("acme") == 1
    now[0] = 31.0
    assert await ring.open_many([token]) == [None]


def test_master_key_from_secrets() -> None:
    text = new_master_key()
    assert MasterKey.configured({}) is None
    assert MasterKey.configured({"CAIRN_MASTER_KEY": text}) is not None
    with pytest.raises(SecretNotFoundError):
        MasterKey.from_secrets({})
    with pytest.raises(ValueError, match="not valid base64"):
        MasterKey.from_text("not base64!")
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey.from_text(base64.b64encode(b"short").decode())


@pytest.fixture
async def pg_keys(fresh_database: str) -> AsyncIterator[PostgresTenantKeyStore]:
    pool = await create_pool(fresh_database)
    store = PostgresTenantKeyStore(pool)
    await store.migrate()
    await store.migrate()  # idempotent
    yield store
    await pool.close()


@pytest.mark.integration
async def test_postgres_keyring_round_trip_and_erasure(pg_keys: PostgresTenantKeyStore) -> None:
    master = new_master_key()
    ring = keyring(pg_keys, master)
    acme = await ring.seal("acme", b"acme text")
    # a concurrent writer creating the tenant's key gets the one already there
    other = keyring(pg_keys, master)
    assert (await other.open(await other.seal("acme", b"y"))) == b"y"
    rows = await pg_keys.pool.fetch("SELECT tenant, wrapped_key, erased_at FROM tenant_keys")
    assert [(r["tenant"], r["erased_at"]) for r in rows] == [("acme", None)]
    assert b"acme text" not in bytes(rows[0]["wrapped_key"])
    assert await keyring(pg_keys, master).open(acme) == b"acme text"
    assert await ring.erase("acme") == 1
    assert await ring.erase("acme") == 0
    row = await pg_keys.pool.fetchrow("SELECT wrapped_key, erased_at FROM tenant_keys")
    assert row["wrapped_key"] is None
    assert row["erased_at"] is not None
    assert await keyring(pg_keys, master).open_many([acme]) == [None]


@pytest.fixture
async def one_connection_keys(fresh_database: str) -> AsyncIterator[PostgresTenantKeyStore]:
    """A keyring table on a pool of one connection: a second connection would never come."""
    pool = await create_pool(fresh_database, 1, 1)
    store = PostgresTenantKeyStore(pool)
    await store.migrate()
    yield store
    await pool.close()


@pytest.mark.integration
async def test_a_first_key_is_created_on_the_callers_connection_in_its_transaction(
    one_connection_keys: PostgresTenantKeyStore,
) -> None:
    master = new_master_key()
    ring = keyring(one_connection_keys, master)
    async with transaction(one_connection_keys.pool) as conn:
        token = await asyncio.wait_for(ring.seal("acme", b"in the transaction", conn=conn), 30)
        assert await asyncio.wait_for(ring.open(token, conn=conn), 30) == b"in the transaction"
    assert await keyring(one_connection_keys, master).open(token) == b"in the transaction"
    assert await one_connection_keys.pool.fetchval("SELECT count(*) FROM tenant_keys") == 1


@pytest.mark.integration
async def test_a_key_created_in_a_rolled_back_transaction_is_not_used_afterwards(
    pg_keys: PostgresTenantKeyStore,
) -> None:
    master = new_master_key()
    ring = keyring(pg_keys, master)

    async def seal_then_roll_back() -> None:
        async with transaction(pg_keys.pool) as conn:
            await ring.seal("acme", b"gone", conn=conn)
            await ring.seal("acme", b"gone too", conn=conn)  # the same, still uncommitted, key
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await seal_then_roll_back()
    assert await pg_keys.pool.fetchval("SELECT count(*) FROM tenant_keys") == 0
    # sealed afterwards under a key that exists, not the one the rollback took away
    later = await ring.seal("acme", b"later")
    assert await keyring(pg_keys, master).open(later) == b"later"
    again = await ring.seal("acme", b"again")
    assert again.split(":")[2] == later.split(":")[2]  # that committed key is the one cached now
    assert await pg_keys.pool.fetchval("SELECT count(*) FROM tenant_keys") == 1


def test_beside_the_local_stack_its_development_key_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn_localstack.config import StackConfig

    for var in ("CAIRN_MASTER_KEY", "CAIRN_MASTER_KEY_FILE", "CAIRN_VAULT_ADDR"):
        monkeypatch.delenv(var, raising=False)
    local = MasterKey.configured()
    assert local is not None
    wrapped = MasterKey.from_text(StackConfig().master_key).wrap("k1", b"k" * 32)
    assert local.unwrap("k1", wrapped) == b"k" * 32
    # a configured key wins over the local stack's
    monkeypatch.setenv("CAIRN_MASTER_KEY", new_master_key())
    with pytest.raises(EncryptionError):
        MasterKey.configured().unwrap("k1", wrapped)  # type: ignore[union-attr]


def test_encryption_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    text = new_master_key()
    assert MasterKey.configured({"CAIRN_MASTER_KEY": text, "CAIRN_ENCRYPTION": "off"}) is None
    assert MasterKey.configured({"CAIRN_MASTER_KEY": text, "CAIRN_ENCRYPTION": "on"}) is not None
    monkeypatch.setenv("CAIRN_ENCRYPTION", "OFF")  # beside the local stack too
    assert MasterKey.configured() is None
