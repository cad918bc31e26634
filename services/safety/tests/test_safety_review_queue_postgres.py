"""The ReviewQueue behaviour suite against PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_auth.encryption import SEALED_PREFIX, Keyring, MasterKey, PostgresTenantKeyStore, new_master_key
from cairn_bus.postgres import create_pool
from cairn_events import ReviewDecision
from cairn_safety.adapters.postgres import PostgresReviewQueue
from cairn_safety.domain.reviews import ReviewStatus
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


async def test_a_one_connection_pool_seals_and_decides_items_on_the_claims_connection(
    fresh_database: str,
) -> None:
    """Tenant keys are looked up and created on the connection of the transaction that holds the item,
    never on a second one: a pool of one connection does not wait for itself (it did, until timeout)."""
    behaviour = load_behaviour()
    pool = await create_pool(fresh_database, 1, 1)
    try:
        # no key cache: every seal and open inside a transaction goes to the keyring table
        keyring = Keyring(MasterKey.from_text(new_master_key()), PostgresTenantKeyStore(pool), cache_ttl_s=0)
        queue = PostgresReviewQueue(pool, keyring)
        await queue.migrate()
        item = behaviour.review_item(1)

        async def add() -> None:
            async with queue.once("c", "e1") as tx:
                assert tx is not None
                await tx.add(item)  # the tenant's first key: created inside the inbox claim

        await asyncio.wait_for(add(), 30)
        done = await asyncio.wait_for(
            queue.resolve(item.review_id, ReviewDecision.EDIT, resolved_by="key-ann", note="n", text="t"), 30
        )
        assert (done.status, done.note, done.edited_text) == (ReviewStatus.EDITED, "n", "t")
        assert done.text == "text 1"
        assert await queue.get(item.review_id) == done
        row = await pool.fetchrow("SELECT text, note FROM safety_reviews")
        assert row["text"].startswith(SEALED_PREFIX)
        assert row["note"].startswith(SEALED_PREFIX)
        assert await pool.fetchval("SELECT count(*) FROM tenant_keys") == 1
    finally:
        await pool.close()
