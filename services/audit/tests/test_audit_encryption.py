"""Audit payloads encrypted per tenant in PostgreSQL: ciphertext in the table, plaintext to every
reader, and an erasure that leaves the content unreadable and the chain verifiable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.adapters.sealing import ERASED_PAYLOAD, SEALED
from cairn_audit.bootstrap import Deps, build
from cairn_audit.domain.records import verify_chain
from cairn_audit.handlers import flush, on_any_event
from cairn_audit.ports import AuditStore
from cairn_audit.settings import Settings
from cairn_auth.encryption import (
    ERASED,
    SEALED_PREFIX,
    TENANT_ERASE,
    Keyring,
    MasterKey,
    PostgresTenantKeyStore,
    new_master_key,
)
from cairn_auth.management import admin_action
from cairn_bus import InMemoryPublisher, Origin
from cairn_events import RequestSubmittedV1
from cairn_testing import schema_examples
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration

_suite: Any = load_suite(Path(__file__).with_name("store_behaviour.py"))
audit_record = _suite.audit_record
SECRET = "Hei på deg ✓"  # in every suite record's messages


@pytest.fixture
def master() -> str:
    return new_master_key()


def keyring(pool: Any, master: str) -> Keyring:
    return Keyring(MasterKey.from_text(master), PostgresTenantKeyStore(pool))


@pytest.fixture
async def sealed_store(pool: Any, master: str) -> PostgresAuditStore:
    store = PostgresAuditStore(pool, keyring(pool, master))
    await store.migrate()
    return store


class TestEncryptedPostgresAuditStore(_suite.AuditStoreBehaviour):  # type: ignore[misc]
    """Every behaviour of the store holds with encryption on (the suite's records have a tenant)."""

    @pytest.fixture
    def store(self, sealed_store: PostgresAuditStore) -> PostgresAuditStore:
        return sealed_store

    async def tamper(self, store: AuditStore, event_id: str, **changes: Any) -> None:
        assert isinstance(store, PostgresAuditStore)
        for field, value in changes.items():
            column = '"offset"' if field == "offset" else field
            await store.pool.execute(
                f"UPDATE audit_events SET {column} = $1 WHERE event_id = $2", value, event_id
            )


async def test_the_table_holds_ciphertext_and_readers_get_plaintext(sealed_store: PostgresAuditStore) -> None:
    await sealed_store.append([audit_record(1), audit_record(2, tenant=None)])
    rows = {
        r["event_id"]: r
        for r in await sealed_store.pool.fetch(
            "SELECT event_id, payload::text AS p, payload FROM audit_events"
        )
    }
    assert SECRET not in rows["evt-1"]["p"]
    assert "support-answer" not in rows["evt-1"]["p"]
    assert list(rows["evt-1"]["payload"]) == [SEALED]
    assert rows["evt-1"]["payload"][SEALED].startswith(SEALED_PREFIX)
    # a platform event (no tenant) is stored as it is
    assert SECRET in rows["evt-2"]["p"]
    # every read method opens it
    trail = await sealed_store.trail("req-a")
    assert [r.payload["messages"][0]["content"] for r in trail] == [SECRET, SECRET]
    assert (await sealed_store.trails(["req-a"]))["req-a"][0].payload == audit_record(1).payload
    assert (await sealed_store.get("evt-1")).payload == audit_record(1).payload  # type: ignore[union-attr]
    assert (await sealed_store.events(tenant="acme"))[0].payload == audit_record(1).payload
    assert (await sealed_store.in_range("cairn.requests", None, None))[0].payload == audit_record(1).payload
    # what readers get still verifies (the chain covers the stored ciphertext)
    assert verify_chain(trail) == []
    assert await sealed_store.verify() == []


async def test_a_reader_without_the_master_key_sees_only_ciphertext(
    sealed_store: PostgresAuditStore, pool: Any
) -> None:
    await sealed_store.append([audit_record(1)])
    plain_reader = PostgresAuditStore(pool, None)
    [stored] = await plain_reader.trail("req-a")
    assert list(stored.payload) == [SEALED]
    assert await plain_reader.verify() == []


async def test_tenants_are_sealed_under_their_own_keys(sealed_store: PostgresAuditStore) -> None:
    await sealed_store.append([audit_record(1), audit_record(2, tenant="globex")])
    rows = await sealed_store.pool.fetch("SELECT payload FROM audit_events ORDER BY seq")
    key_ids = [r["payload"][SEALED][len(SEALED_PREFIX) :].split(":")[0] for r in rows]
    keys = await sealed_store.pool.fetch("SELECT key_id, tenant FROM tenant_keys")
    assert {k["key_id"]: k["tenant"] for k in keys} == dict(zip(key_ids, ["acme", "globex"], strict=True))


def request(tenant: str, request_id: str) -> RequestSubmittedV1:
    event = next(e.event() for e in schema_examples(RequestSubmittedV1.event_type))
    assert isinstance(event, RequestSubmittedV1)
    return event.model_copy(update={"tenant": tenant, "request_id": request_id})


async def test_erasing_a_tenant_leaves_its_content_unreadable_and_the_chain_verifiable(
    sealed_store: PostgresAuditStore, pool: Any, master: str
) -> None:
    assert sealed_store.keyring is not None
    async with build(
        Settings(), InMemoryPublisher("/cairn/audit"), store=sealed_store, keyring=sealed_store.keyring
    ) as deps:
        publisher = InMemoryPublisher("/cairn/gateway")
        for offset, event in enumerate([request("acme", "req-acme"), request("globex", "req-globex")]):
            await on_any_event(
                event, publisher.build(event).meta.with_origin(Origin("cairn.requests", 0, offset)), deps
            )
        await flush(deps)
        assert (await sealed_store.trail("req-acme"))[0].payload["request_id"] == "req-acme"

        erase = admin_action("ops", TENANT_ERASE, "acme", tenant="acme")
        meta = InMemoryPublisher("/cairn/cli").build(erase).meta.with_origin(Origin("cairn.admin", 0, 0))
        await on_any_event(erase, meta, deps)
        await on_any_event(erase, meta, deps)  # redelivered: idempotent
        await flush(deps)
        await _check_erased(deps, sealed_store)
        # a fresh reader with the same master key (another process) cannot read it either
        fresh = PostgresAuditStore(pool, keyring(pool, master))
        await _check_erased(deps, fresh)


async def _check_erased(deps: Deps, store: PostgresAuditStore) -> None:
    [acme] = await store.trail("req-acme")
    assert acme.payload == ERASED_PAYLOAD
    assert acme.payload["erased"] == ERASED
    [globex] = await store.trail("req-globex")
    assert globex.payload["request_id"] == "req-globex"
    # the erasure itself stays readable in the trail
    [action] = await store.events(event_type="cairn.admin_action.recorded.v1")
    assert action.payload["action"] == TENANT_ERASE
    assert action.payload["target"] == "acme"
    # the chain verifies (what `cairn audit verify` runs), and the key row is gone
    assert await store.verify() == []
    assert verify_chain(await store.events(limit=10)) == []
    key = await store.pool.fetchrow("SELECT wrapped_key, erased_at FROM tenant_keys WHERE tenant = 'acme'")
    assert key["wrapped_key"] is None
    assert key["erased_at"] is not None
    assert deps.erasures == []
