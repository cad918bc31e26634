"""The running audit service erases a tenant when the admin action arrives on the broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from cairn_audit import bootstrap
from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.adapters.sealing import ERASED_PAYLOAD, SEALED
from cairn_audit.app import router
from cairn_audit.settings import Settings
from cairn_auth.encryption import SEALED_PREFIX, TENANT_ERASE, Keyring, MasterKey, PostgresTenantKeyStore
from cairn_auth.management import admin_action
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.postgres import create_pool
from cairn_events import RequestSubmittedV1, load_topics
from cairn_testing import running_service, start_group_at_end

pytestmark = pytest.mark.integration


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@pytest.fixture
async def settings(kafka_bootstrap: str, fresh_database: str, unique_group: str) -> Settings:
    await ensure_topics(kafka_bootstrap)
    await start_group_at_end(kafka_bootstrap, unique_group, sorted(load_topics()))
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=fresh_database,
        kafka_group_id=unique_group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_fetch_max_wait_ms=10,
        http_enabled=False,
    )


@pytest.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield KafkaPublisher(producer, "/cairn/test", service="test")
    await producer.stop()


def request(tenant: str, request_id: str, question: str) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": request_id,
            "tenant": tenant,
            "prompt": "qa@production",
            "messages": [{"role": "user", "content": question}],
            "submitted_at": "2026-01-02T03:04:05Z",
        }
    )


async def test_an_erasure_on_the_broker_shreds_the_tenant_and_the_chain_verifies(
    settings: Settings, publisher: KafkaPublisher, fresh_database: str
) -> None:
    run = uuid.uuid4().hex[:8]
    gone, kept = f"gone-{run}", f"kept-{run}"
    master = MasterKey.configured()
    assert master is not None, "the test stack gives the services a master key"
    pool = await create_pool(fresh_database)
    try:
        # no key cache: this reader is another process than the service that erases
        store = PostgresAuditStore(pool, Keyring(master, PostgresTenantKeyStore(pool), cache_ttl_s=0))
        async with running_service(router, settings, bootstrap.build):
            await publisher.publish(request(gone, f"r-{gone}", "my account number is 12345678"))
            await publisher.publish(request(kept, f"r-{kept}", "what does yield do?"))
            await wait_for(lambda: _count(store, 2))
            raw = await pool.fetchval("SELECT payload::text FROM audit_events WHERE tenant = $1", gone)
            assert "12345678" not in raw
            assert SEALED_PREFIX in raw
            [before] = await store.trail(f"r-{gone}")
            assert before.payload["messages"][0]["content"] == "my account number is 12345678"

            await publisher.publish(admin_action("ops", TENANT_ERASE, gone, tenant=gone))
            await wait_for(lambda: _erased(store, f"r-{gone}"))
        [kept_record] = await store.trail(f"r-{kept}")
        assert kept_record.payload["request_id"] == f"r-{kept}"
        [action] = await store.events(event_type="cairn.admin_action.recorded.v1")
        assert (action.payload["action"], action.payload["target"]) == (TENANT_ERASE, gone)
        assert list(
            await pool.fetchval(
                "SELECT payload FROM audit_events WHERE tenant = $1 AND event_type "
                "<> 'cairn.admin_action.recorded.v1'",
                gone,
            )
        ) == [SEALED]
        assert await store.verify() == []
    finally:
        await pool.close()


async def _count(store: PostgresAuditStore, n: int) -> bool:
    return await store.count() >= n


async def _erased(store: PostgresAuditStore, request_id: str) -> bool:
    records = await store.trail(request_id)
    return bool(records) and records[0].payload == ERASED_PAYLOAD
