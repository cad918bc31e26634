"""Tenant spend in the inference service's PostgreSQL, shared by every replica.

`inference_tenant_spend` holds one row per tenant and UTC day (cost as `numeric`, so totals add up
exactly); `inference_budget_alerts` one row per alert level raised for a tenant and day. An addition
is one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` statement: PostgreSQL locks the row, so
concurrent additions from any replica are each counted once. A database outage raises `TransientError`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from cairn_bus.postgres import guarded, migrate
from cairn_inference.domain.budget import DayUsage, check_spend

__all__ = ["DDL", "PostgresSpendLedger"]

MIGRATION_LOCK = "cairn_inference_budget_migrate"
DDL = (
    """
    CREATE TABLE IF NOT EXISTS inference_tenant_spend (
        tenant   text    NOT NULL,
        day      date    NOT NULL,
        cost_usd numeric NOT NULL,
        tokens   bigint  NOT NULL,
        PRIMARY KEY (tenant, day)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS inference_budget_alerts (
        tenant    text        NOT NULL,
        day       date        NOT NULL,
        level     text        NOT NULL,
        raised_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, day, level)
    )
    """,
)
_ADD = (
    "INSERT INTO inference_tenant_spend AS s (tenant, day, cost_usd, tokens) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (tenant, day) DO UPDATE SET cost_usd = s.cost_usd + EXCLUDED.cost_usd, "
    "tokens = s.tokens + EXCLUDED.tokens "
    "RETURNING s.cost_usd - $3 AS before, s.cost_usd AS after"
)


class PostgresSpendLedger:
    """`SpendLedger` on an asyncpg pool (`cairn_bus.postgres.create_pool`)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        """Create both tables when missing (replicas starting together migrate one by one)."""
        await migrate(self.pool, MIGRATION_LOCK, *DDL)

    @guarded
    async def usage(self, tenant: str, day: date) -> DayUsage:
        row = await self.pool.fetchrow(
            "SELECT cost_usd, tokens FROM inference_tenant_spend WHERE tenant = $1 AND day = $2", tenant, day
        )
        return DayUsage(0.0, 0) if row is None else DayUsage(float(row["cost_usd"]), int(row["tokens"]))

    @guarded
    async def add(self, tenant: str, day: date, cost_usd: float, tokens: int) -> tuple[float, float]:
        check_spend(cost_usd, tokens)
        row = await self.pool.fetchrow(_ADD, tenant, day, Decimal(repr(cost_usd)), tokens)
        return float(row["before"]), float(row["after"])

    @guarded
    async def first_alert(self, tenant: str, day: date, level: str) -> bool:
        inserted = await self.pool.fetchval(
            "INSERT INTO inference_budget_alerts (tenant, day, level) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant, day, level) DO NOTHING RETURNING true",
            tenant,
            day,
            level,
        )
        return inserted is True
