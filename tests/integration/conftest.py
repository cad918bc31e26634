"""Shared set-up for integration tests: the audit service against the test stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.settings import Settings as AuditSettings
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.postgres import create_pool
from cairn_events import load_topics
from cairn_testing import start_group_at_end

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_settings(kafka_bootstrap: str, fresh_database: str, unique_group: str) -> AuditSettings:
    """Audit settings for one test: its own database, and its own group starting at the topics' ends."""
    await ensure_topics(kafka_bootstrap)
    await start_group_at_end(kafka_bootstrap, unique_group, sorted(load_topics()))
    return AuditSettings(
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=fresh_database,
        kafka_group_id=unique_group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_fetch_max_wait_ms=10,
        consumer_retry_backoff_ms=10,
    )


@pytest.fixture
async def audit_store(fresh_database: str) -> AsyncIterator[PostgresAuditStore]:
    """The PostgreSQL audit store of the test's database (migrated)."""
    pool = await create_pool(fresh_database)
    store = PostgresAuditStore(pool)
    await store.migrate()
    yield store
    await pool.close()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer on the test broker; the registry's topics exist."""
    await ensure_topics(kafka_bootstrap)
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def publisher(producer: AIOKafkaProducer) -> KafkaPublisher:
    """Publishes registry events as an upstream system (`/cairn/test`)."""
    return KafkaPublisher(producer, "/cairn/test", service="test")


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
