"""The SpendLedger behaviour suite: what every store of tenant spend must do.

Not collected by itself. A store runs it by subclassing `SpendLedgerBehaviour` as a `Test...` class
with a `ledger` fixture giving a new, empty store: `test_inference_budget_memory.py` runs it in memory,
`test_inference_budget_postgres.py` against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date, timedelta

import pytest

from cairn_inference.domain.budget import ALERT_LEVEL, SpendLedger, crossed

DAY = date(2026, 12, 7)


class SpendLedgerBehaviour:
    """What every SpendLedger promises."""

    async def test_nothing_added_is_nothing_spent(self, ledger: SpendLedger) -> None:
        assert (await ledger.usage("acme", DAY)).cost_usd == 0.0

    async def test_add_returns_the_totals_before_and_after(self, ledger: SpendLedger) -> None:
        assert await ledger.add("acme", DAY, 1.25, 300) == (0.0, 1.25)
        assert await ledger.add("acme", DAY, 0.5, 100) == (1.25, 1.75)
        assert (await ledger.usage("acme", DAY)).cost_usd == 1.75

    async def test_a_free_completion_changes_nothing(self, ledger: SpendLedger) -> None:
        await ledger.add("acme", DAY, 2.0, 10)
        assert await ledger.add("acme", DAY, 0.0, 0) == (2.0, 2.0)

    async def test_tokens_add_up_per_tenant_and_day(self, ledger: SpendLedger) -> None:
        assert (await ledger.usage("acme", DAY)).tokens == 0
        await ledger.add("acme", DAY, 0.5, 300)
        await ledger.add("acme", DAY, 0.0, 49)
        await ledger.add("globex", DAY, 0.1, 7)
        await ledger.add("acme", DAY + timedelta(days=1), 0.1, 5)
        assert (await ledger.usage("acme", DAY)).tokens == 349
        assert (await ledger.usage("globex", DAY)).tokens == 7
        assert (await ledger.usage("acme", DAY + timedelta(days=1))).tokens == 5

    async def test_tenants_and_days_are_counted_apart(self, ledger: SpendLedger) -> None:
        await ledger.add("acme", DAY, 3.0, 1)
        await ledger.add("globex", DAY, 1.0, 1)
        await ledger.add("acme", DAY + timedelta(days=1), 0.25, 1)
        assert (await ledger.usage("acme", DAY)).cost_usd == 3.0
        assert (await ledger.usage("globex", DAY)).cost_usd == 1.0
        assert (await ledger.usage("acme", DAY + timedelta(days=1))).cost_usd == 0.25
        assert (await ledger.usage("acme", DAY - timedelta(days=1))).cost_usd == 0.0

    async def test_amounts_add_up_exactly(self, ledger: SpendLedger) -> None:
        for _ in range(10):
            await ledger.add("acme", DAY, 0.1, 1)
        assert (
            await ledger.usage("acme", DAY)
        ).cost_usd == 1.0  # 0.1 summed as binary floats is 0.9999999999999999
        await ledger.add("acme", DAY, 2e-08, 1)  # one output token of a cheap local model
        assert (await ledger.usage("acme", DAY)).cost_usd == 1.00000002

    async def test_concurrent_adds_are_each_counted_once(self, ledger: SpendLedger) -> None:
        totals = await asyncio.gather(*(ledger.add("acme", DAY, 0.25, 10) for _ in range(20)))
        assert (await ledger.usage("acme", DAY)).cost_usd == 5.0
        chain = sorted(totals)
        assert chain[0][0] == 0.0
        assert all(after == before + 0.25 for before, after in chain)
        assert all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1))  # no overlap, no gap
        # so exactly one of them crosses 80 % of a $4 budget
        assert sum(crossed(before, after, 4.0) for before, after in totals) == 1

    async def test_a_negative_or_non_finite_cost_is_refused(self, ledger: SpendLedger) -> None:
        for cost in (-0.01, math.inf, math.nan):
            with pytest.raises(ValueError, match="cost"):
                await ledger.add("acme", DAY, cost, 1)
        with pytest.raises(ValueError, match="token"):
            await ledger.add("acme", DAY, 0.01, -1)
        assert (await ledger.usage("acme", DAY)).cost_usd == 0.0

    async def test_an_alert_level_is_first_only_once(self, ledger: SpendLedger) -> None:
        assert await ledger.first_alert("acme", DAY, ALERT_LEVEL) is True
        assert await ledger.first_alert("acme", DAY, ALERT_LEVEL) is False
        assert await ledger.first_alert("acme", DAY, "100%") is True
        assert await ledger.first_alert("globex", DAY, ALERT_LEVEL) is True
        assert await ledger.first_alert("acme", DAY + timedelta(days=1), ALERT_LEVEL) is True

    async def test_concurrent_first_alerts_let_one_through(self, ledger: SpendLedger) -> None:
        firsts = await asyncio.gather(*(ledger.first_alert("acme", DAY, ALERT_LEVEL) for _ in range(10)))
        assert sorted(firsts) == [False] * 9 + [True]
