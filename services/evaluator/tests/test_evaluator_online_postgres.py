"""The PostgreSQL online store passes the behaviour suite; two checkers racing fire a key once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from cairn_evaluator.adapters.pg_online import PostgresOnlineStore
from cairn_evaluator.adapters.pg_schema import migrate

from .online_behaviour import OnlineStoreBehaviour, firing

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(pool: Any) -> Any:
    """The shared fresh-database pool, with the evaluator's tables."""
    await migrate(pool)
    await migrate(pool)  # idempotent
    return pool


class TestPostgresOnlineStore(OnlineStoreBehaviour):
    @pytest.fixture
    def online_store(self, pool: Any) -> PostgresOnlineStore:
        return PostgresOnlineStore(pool)


async def test_racing_checkers_fire_a_key_once(pool: Any) -> None:
    store = PostgresOnlineStore(pool)
    results = await asyncio.gather(*(store.fire(firing(f"a{i}", 0), timedelta(hours=1)) for i in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert len(await store.alerts(None)) == 1
