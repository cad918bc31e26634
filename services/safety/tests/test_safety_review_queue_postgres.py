"""The ReviewQueue behaviour suite against PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

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
        queue = PostgresReviewQueue(pool)
        await queue.migrate()
        await queue.migrate()  # idempotent
        yield queue
        await pool.close()


async def test_tables_are_prefixed_and_typed(fresh_database: str) -> None:
    pool = await create_pool(fresh_database, 1, 1)
    try:
        await PostgresReviewQueue(pool).migrate()
        tables = {
            r["tablename"]
            for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert tables == {"safety_reviews", "cairn_inbox"}
        with pytest.raises(Exception, match="safety_reviews_status_check"):
            await pool.execute(
                "INSERT INTO safety_reviews (id, request_id, tenant, stage, verdict, findings, text, policy, "
                "event_id, status, created_at) VALUES ('r', 'q', 't', 'input', 'review', '[]', '', 'p', 'e', "
                "'maybe', now())"
            )
    finally:
        await pool.close()
