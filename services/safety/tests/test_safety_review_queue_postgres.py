"""The ReviewQueue behaviour suite against PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_auth.encryption import Keyring, MasterKey, PostgresTenantKeyStore, new_master_key
from cairn_bus.postgres import create_pool
from cairn_safety.adapters.postgres import PostgresReviewQueue
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration


def load_behaviour() -> ModuleType:
    """The shared behaviour suite (loaded by path: test files cannot import each other)."""
    return load_suite(Path(__file__).with_name("review_queue_behaviour.py"))


ReviewQueueBehaviour: Any = load_behaviour().ReviewQueueBehaviour


class TestPostgresReviewQueue(ReviewQueueBehaviour):  # type: ignore[misc]
    @pytest.fixture
    async def queue(self, fresh_database: str) -> AsyncIterator[PostgresReviewQueue]:
        pool = await create_pool(fresh_database, 1, 3)
        keyring = Keyring(MasterKey.from_text(new_master_key()), PostgresTenantKeyStore(pool))
        queue = PostgresReviewQueue(pool, keyring)
        await queue.migrate()
        await queue.migrate()  # idempotent
        yield queue
        await pool.close()

    async def erase_tenant(self, queue: PostgresReviewQueue, tenant: str) -> None:
        assert queue.keyring is not None
        await queue.keyring.erase(tenant)


async def test_tables_are_prefixed_and_typed(fresh_database: str) -> None:
    pool = await create_pool(fresh_database, 1, 1)
    try:
        await PostgresReviewQueue(pool).migrate()
        tables = {
            r["tablename"]
            for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert tables == {"safety_reviews", "cairn_inbox", "tenant_keys"}
        with pytest.raises(Exception, match="safety_reviews_status_check"):
            await pool.execute(
                "INSERT INTO safety_reviews (id, request_id, tenant, stage, verdict, findings, text, policy, "
                "event_id, status, created_at) VALUES ('r', 'q', 't', 'input', 'review', '[]', '', 'p', 'e', "
                "'maybe', now())"
            )
    finally:
        await pool.close()


async def test_replicas_sweeping_at_once_decide_each_item_once(fresh_database: str) -> None:
    """A sweep skips the items another replica's sweep holds, instead of waiting or deciding them again."""
    behaviour = load_behaviour()
    pool = await create_pool(fresh_database, 1, 4)
    try:
        queue = PostgresReviewQueue(pool)
        await queue.migrate()
        other = PostgresReviewQueue(pool)  # a second replica on the same database
        first, second = (behaviour.review_item(n, deadline_at=behaviour.T0) for n in (1, 2))
        async with queue.once("c", "x") as tx:
            await tx.add(first)
            await tx.add(second)
        holding, release = asyncio.Event(), asyncio.Event()
        announced: list[str] = []

        async def slow(item: Any) -> None:
            announced.append(item.review_id)
            holding.set()
            await release.wait()

        async def quick(item: Any) -> None:
            announced.append(item.review_id)

        now = behaviour.T0 + timedelta(seconds=1)
        a = asyncio.create_task(queue.resolve_overdue(now, slow, limit=1))
        await holding.wait()
        b = await other.resolve_overdue(now, quick)  # skips the locked item, decides the other
        release.set()
        a_done = await a
        assert len(a_done) == 1
        assert len(b) == 1
        assert {a_done[0].review_id, b[0].review_id} == {first.review_id, second.review_id}
        assert sorted(announced) == sorted([first.review_id, second.review_id])
        assert await queue.resolve_overdue(now, quick) == []
    finally:
        await pool.close()
