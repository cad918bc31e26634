"""The PostgreSQL spend ledger: the behaviour suite, replicas sharing it and migrating together, the
stored rows, outages transient."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import TransientError
from cairn_bus.postgres import create_pool
from cairn_inference.adapters.budget_postgres import PostgresSpendLedger
from cairn_inference.domain.budget import ALERT_LEVEL
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration

behaviour = load_suite(Path(__file__).with_name("budget_behaviour.py"))
SpendLedgerBehaviour: Any = behaviour.SpendLedgerBehaviour
DAY = behaviour.DAY


@pytest.fixture
async def db_pool(fresh_database: str) -> AsyncIterator[Any]:
    pool = await create_pool(fresh_database, 1, 8)  # room for concurrent adds
    yield pool
    await pool.close()


@pytest.fixture
async def ledger(db_pool: Any) -> PostgresSpendLedger:
    ledger = PostgresSpendLedger(db_pool)
    await ledger.migrate()
    return ledger


class TestPostgresSpendLedger(SpendLedgerBehaviour):  # type: ignore[misc]
    @pytest.fixture
    async def ledger(self, db_pool: Any) -> PostgresSpendLedger:
        ledger = PostgresSpendLedger(db_pool)
        await ledger.migrate()
        await ledger.migrate()  # idempotent
        return ledger


async def test_replicas_starting_together_migrate_one_by_one(db_pool: Any) -> None:
    await asyncio.gather(*(PostgresSpendLedger(db_pool).migrate() for _ in range(4)))
    tables = await db_pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert [t["tablename"] for t in tables] == ["inference_budget_alerts", "inference_tenant_spend"]


async def test_replicas_share_totals_and_alerts(ledger: PostgresSpendLedger, fresh_database: str) -> None:
    other_pool = await create_pool(fresh_database, 1, 8)  # another replica: its own connections
    try:
        other = PostgresSpendLedger(other_pool)
        await other.migrate()
        adds = [ledger.add("acme", DAY, 0.125, 5) for _ in range(10)]
        adds += [other.add("acme", DAY, 0.125, 5) for _ in range(10)]
        await asyncio.gather(*adds)
        assert (await ledger.usage("acme", DAY)).cost_usd == 2.5
        assert (await other.usage("acme", DAY)).cost_usd == 2.5
        firsts = await asyncio.gather(
            *(replica.first_alert("acme", DAY, ALERT_LEVEL) for replica in [ledger, other] * 5)
        )
        assert firsts.count(True) == 1
    finally:
        await other_pool.close()


async def test_one_row_per_tenant_and_day_with_its_tokens(ledger: PostgresSpendLedger, db_pool: Any) -> None:
    await ledger.add("acme", DAY, 0.5, 300)
    await ledger.add("acme", DAY, 0.25, 120)
    await ledger.first_alert("acme", DAY, ALERT_LEVEL)
    rows = await db_pool.fetch("SELECT tenant, day, cost_usd, tokens FROM inference_tenant_spend")
    assert [dict(r) for r in rows] == [{"tenant": "acme", "day": DAY, "cost_usd": 0.75, "tokens": 420}]
    alerts = await db_pool.fetch("SELECT tenant, day, level FROM inference_budget_alerts")
    assert [dict(r) for r in alerts] == [{"tenant": "acme", "day": DAY, "level": ALERT_LEVEL}]


async def test_an_unreachable_database_is_a_transient_error(
    ledger: PostgresSpendLedger, db_pool: Any
) -> None:
    await db_pool.close()
    with pytest.raises(TransientError):
        await ledger.usage("acme", DAY)
    with pytest.raises(TransientError):
        await ledger.add("acme", DAY, 0.1, 1)
    with pytest.raises(TransientError):
        await ledger.first_alert("acme", DAY, ALERT_LEVEL)
