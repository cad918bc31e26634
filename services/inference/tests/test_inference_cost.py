"""Each completion's cost, priced with the price table, by tenant and model; tenant budgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from cairn_bus import InMemoryInbox, InMemoryPublisher
from cairn_events import TokenUsage
from cairn_inference.adapters.telemetry import publish_budgets, record_cost
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.domain.registry import RegistryView
from cairn_inference.handlers import on_input_screened
from cairn_inference.settings import Settings
from cairn_observability.pricing import Budgets, ModelPrice, PriceTable

from .conftest import FakeBackend, screened

TABLE = PriceTable(
    default=ModelPrice(input_per_mtok=1, output_per_mtok=2),
    models={"smol": ModelPrice(input_per_mtok=100, output_per_mtok=1000)},
    budgets=Budgets(default=3.0, tenants={"cost-big": 50.0}),
)


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_completion_costs_its_tokens_at_the_model_price() -> None:
    before = _value("cairn_cost_usd_total", tenant="cost-a", model="smol") or 0.0
    cost = record_cost(
        TABLE, tenant="cost-a", model="smol", usage=TokenUsage(input_tokens=1000, output_tokens=100)
    )
    assert cost == pytest.approx(0.1 + 0.1)
    assert _value("cairn_cost_usd_total", tenant="cost-a", model="smol") == pytest.approx(before + 0.2)
    assert _value("cairn_cost_budget_usd", tenant="cost-a") == 3.0


def test_a_tuned_model_is_priced_as_its_base_model() -> None:
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=0)
    assert record_cost(TABLE, tenant="cost-b", model="cairn-qa", usage=usage, base_model="smol") == 100
    assert record_cost(TABLE, tenant="cost-b", model="unknown", usage=usage) == 1


def test_named_budgets_are_published_at_start() -> None:
    publish_budgets(TABLE)
    assert _value("cairn_cost_budget_usd", tenant="cost-big") == 50.0


async def test_the_handler_adds_the_cost_of_each_completion(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "default: {input_per_mtok: 0, output_per_mtok: 0}\nmodels: {smol: {input_per_mtok: 1000, output_per_mtok: 1000}}\n"
    )
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    settings = Settings(model_name="smol", price_table=str(prices))
    async with build(
        settings, publisher, backend=FakeBackend(), inbox=InMemoryInbox(), registry=RegistryView()
    ) as deps:
        event = screened(model="smol", tenant="cost-handler")
        message = InMemoryPublisher("/cairn/safety").build(event)
        await on_input_screened(event, message.meta, deps)
        await on_input_screened(event, message.meta, deps)  # a redelivery costs nothing more
    # FakeBackend: 42 input and 7 output tokens
    assert _value("cairn_cost_usd_total", tenant="cost-handler", model="smol") == pytest.approx(
        49 * 1000 / 1e6
    )
