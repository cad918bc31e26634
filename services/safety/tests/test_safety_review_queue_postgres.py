"""The ReviewQueue behaviour suite against PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_safety.adapters.postgres import PostgresReviewQueue, create_pool

pytestmark = pytest.mark.integration


def load_behaviour() -> ModuleType:
    name = "cairn_safety_tests_review_queue_behaviour"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("review_queue_behaviour.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
