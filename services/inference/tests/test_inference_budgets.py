"""Tenants' daily budgets through the handler: spend is charged per generation, `TenantBudget80` is
raised once at 80 %, and a tenant whose budget is spent is answered `rejected` with nothing generated
(memory ledger; the ledgers themselves are held to their contract in budget_behaviour.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cairn_events import AlertRaisedV1, InputScreenedV1, ResponseStatus
from cairn_inference.adapters.budget_memory import InMemorySpendLedger
from cairn_inference.adapters.cache_memory import InMemoryResponseCache
from cairn_inference.domain.budget import budget_day
from cairn_observability.pricing import Budgets, ModelPrice, PriceTable, TokenLimits

from .conftest import FakeBackend, screened
from .test_inference_handlers import Harness, harnessed, settings

# the fake backend's answer is 42 input and 7 output tokens: $0.049 at $1000 per million tokens
PRICES = PriceTable(
    default=ModelPrice(input_per_mtok=1000, output_per_mtok=1000),
    budgets=Budgets(tenants={"acme": 0.1}),
)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def ledger() -> InMemorySpendLedger:
    return InMemorySpendLedger()


@pytest.fixture
async def harness(backend: FakeBackend, ledger: InMemorySpendLedger) -> AsyncIterator[Harness]:
    exact = settings(response_cache="exact")
    async with harnessed(
        exact, backend, prices=PRICES, ledger=ledger, cache=InMemoryResponseCache()
    ) as harness:
        yield harness


def ask(n: int, tenant: str = "acme", **changes: object) -> InputScreenedV1:
    """A distinct question (no cache hit), sampled unless `changes` say otherwise."""
    messages = [{"role": "user", "content": f"question {n}"}]
    return screened(**{"request_id": f"req-{tenant}-{n}", "tenant": tenant, "model": None,
                       "messages": messages, **changes})  # fmt: skip


def alerts(harness: Harness) -> list[AlertRaisedV1]:
    return [e for e in harness.published.events(AlertRaisedV1.event_type) if isinstance(e, AlertRaisedV1)]


async def test_a_tenant_is_charged_warned_at_80_percent_and_refused_once_its_budget_is_spent(
    harness: Harness, backend: FakeBackend, ledger: InMemorySpendLedger
) -> None:
    for n in range(1, 5):
        await harness.deliver(harness.message(ask(n)))
    assert len(backend.calls) == 3  # $0.049, $0.098, $0.147: the fourth found the budget spent
    assert len(harness.completions()) == 3
    [refused] = harness.responses()
    assert (refused.request_id, refused.status) == ("req-acme-4", ResponseStatus.REJECTED)
    assert refused.reason is not None
    assert refused.reason.startswith("over budget: tenant acme spent $0.1470 of its $0.10 daily budget")
    assert refused.usage is None
    [alert] = alerts(harness)  # raised by the second request, which crossed $0.08, and only then
    assert (alert.alert_name, alert.severity, alert.labels["tenant"]) == ("TenantBudget80", "warning", "acme")
    assert alert.value == pytest.approx(0.098)
    assert (await ledger.usage("acme", budget_day(refused.completed_at))).cost_usd == pytest.approx(0.147)


async def test_a_tenant_without_a_budget_is_not_limited(harness: Harness, backend: FakeBackend) -> None:
    for n in range(1, 6):
        await harness.deliver(harness.message(ask(n, tenant="globex")))
    assert len(backend.calls) == 5
    assert harness.responses() == []
    assert alerts(harness) == []


async def test_a_replayed_request_is_neither_refused_nor_charged(
    harness: Harness, backend: FakeBackend, ledger: InMemorySpendLedger
) -> None:
    for n in range(1, 4):
        await harness.deliver(harness.message(ask(n)))
    spent = (await ledger.usage("acme", budget_day(harness.completions()[0].generated_at))).cost_usd
    replayed = harness.upstream.build(ask(9), replay_id="replay-1", replay_of="evt-1")
    await harness.deliver(replayed)
    assert len(backend.calls) == 4
    assert (await ledger.usage("acme", budget_day(harness.completions()[0].generated_at))).cost_usd == spent


async def test_an_answer_from_the_cache_costs_the_tenant_nothing(
    harness: Harness, backend: FakeBackend, ledger: InMemorySpendLedger
) -> None:
    greedy = {"params": {"temperature": 0.0, "max_tokens": 64}}
    await harness.deliver(harness.message(ask(1, **greedy)))
    await harness.deliver(harness.message(ask(1, request_id="req-again", **greedy)))
    assert len(backend.calls) == 1
    day = budget_day(harness.completions()[0].generated_at)
    assert (await ledger.usage("acme", day)).cost_usd == pytest.approx(0.049)


async def test_a_tenant_over_its_token_limit_is_refused_with_the_count(backend: FakeBackend) -> None:
    prices = PriceTable(
        default=ModelPrice(input_per_mtok=0, output_per_mtok=0),  # free: only the token limit applies
        budgets=Budgets(tokens=TokenLimits(default=100, tenants={"globex": 1000})),
    )
    ledger = InMemorySpendLedger()
    async with harnessed(settings(), backend, prices=prices, ledger=ledger) as harness:
        for n in range(1, 5):
            await harness.deliver(harness.message(ask(n)))
            await harness.deliver(harness.message(ask(n, tenant="globex")))
    # each answer is 49 tokens: acme's third request finds 98 < 100 used and is served, its fourth 147
    assert [c.tenant for c in harness.completions()].count("acme") == 3
    assert [c.tenant for c in harness.completions()].count("globex") == 4
    [refused] = [r for r in harness.responses() if r.tenant == "acme"]
    assert refused.status is ResponseStatus.REJECTED
    assert refused.reason is not None
    assert refused.reason.startswith("over budget: tenant acme used 147 of its 100 daily tokens")
    assert (await ledger.usage("globex", budget_day(refused.completed_at))).tokens == 4 * 49
    assert alerts(harness) == []  # no dollar budget: no TenantBudget80
