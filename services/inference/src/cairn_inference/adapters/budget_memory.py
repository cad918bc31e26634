"""Tenant spend in this process's memory: one replica, nothing kept across restarts.

Totals are kept as decimals, so they add up exactly as in the PostgreSQL ledger (`numeric`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from cairn_inference.domain.budget import DayUsage, check_spend

__all__ = ["InMemorySpendLedger"]


class InMemorySpendLedger:
    """`SpendLedger` in dicts. Each call runs without awaiting, so additions are atomic in one event loop."""

    def __init__(self) -> None:
        self.costs: dict[tuple[str, date], Decimal] = {}
        self.tokens: dict[tuple[str, date], int] = {}
        self.alerts: set[tuple[str, date, str]] = set()

    async def usage(self, tenant: str, day: date) -> DayUsage:
        return DayUsage(float(self.costs.get((tenant, day), Decimal(0))), self.tokens.get((tenant, day), 0))

    async def add(self, tenant: str, day: date, cost_usd: float, tokens: int) -> tuple[float, float]:
        check_spend(cost_usd, tokens)
        before = self.costs.get((tenant, day), Decimal(0))
        after = before + Decimal(repr(cost_usd))
        self.costs[tenant, day] = after
        self.tokens[tenant, day] = self.tokens.get((tenant, day), 0) + tokens
        return float(before), float(after)

    async def first_alert(self, tenant: str, day: date, level: str) -> bool:
        if (tenant, day, level) in self.alerts:
            return False
        self.alerts.add((tenant, day, level))
        return True
