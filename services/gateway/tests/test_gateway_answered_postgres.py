"""The PostgreSQL idempotency table: the behaviour suite, replicas migrating together, outages transient."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cairn_bus import TransientError
from cairn_gateway.adapters.postgres import PostgresAnsweredRequests

from .answered_requests_behaviour import AnsweredRequestsBehaviour, row

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_table(pool: Any) -> PostgresAnsweredRequests:
    table = PostgresAnsweredRequests(pool)
    await table.migrate()
    await table.migrate()  # idempotent
    return table


class TestPostgresAnsweredRequests(AnsweredRequestsBehaviour):
    @pytest.fixture
    def table(self, pg_table: PostgresAnsweredRequests) -> PostgresAnsweredRequests:
        return pg_table


async def test_replicas_starting_together_migrate_one_by_one(pool: Any) -> None:
    await asyncio.gather(*(PostgresAnsweredRequests(pool).migrate() for _ in range(4)))
    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert [t["tablename"] for t in tables] == ["gateway_requests"]


async def test_the_answer_body_is_stored_as_a_json_object(
    pg_table: PostgresAnsweredRequests, pool: Any
) -> None:
    await pg_table.claim(row())
    await pg_table.answer("gw-1", 200, {"choices": [{"index": 0}]}, True, row().claimed_at)
    kind = await pool.fetchval("SELECT jsonb_typeof(body) FROM gateway_requests WHERE request_id = 'gw-1'")
    assert kind == "object"


async def test_an_unreachable_database_is_a_transient_error(pg_table: PostgresAnsweredRequests) -> None:
    await pg_table.pool.close()
    with pytest.raises(TransientError):
        await pg_table.claim(row())
