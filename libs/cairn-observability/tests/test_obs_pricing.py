"""The price table: per-model prices with a default, tenant budgets, the repository's infra/prices.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cairn_observability.pricing import ModelPrice, PriceTable, load_price_table, price_table_path

REPO = Path(__file__).resolve().parents[3]


def test_a_model_is_priced_by_name_then_base_model_then_default() -> None:
    table = PriceTable(
        default=ModelPrice(input_per_mtok=1, output_per_mtok=2),
        models={"base": ModelPrice(input_per_mtok=10, output_per_mtok=30)},
    )
    assert table.cost("base", 1_000_000, 0) == 10
    assert table.cost("tuned", 0, 1_000_000, base_model="base") == 30
    assert table.cost("other", 500_000, 500_000) == pytest.approx(1.5)


def test_the_repository_table_loads_and_prices_the_local_model() -> None:
    table = load_price_table(REPO / "infra" / "prices.yaml")
    smol = table.price_for("SmolLM2-135M-Instruct")
    assert smol is not table.default
    assert table.price_for("cairn-qa") == smol
    assert table.price_for("gpt-unknown") == table.default
    assert table.budgets.for_tenant("someone-new") == table.budgets.default


def test_a_malformed_table_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("default: {input_per_mtok: -1, output_per_mtok: 1}\n")
    with pytest.raises(ValidationError):
        load_price_table(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValueError):
        load_price_table(bad)
    bad.write_text("currency: EUR\ndefault: {input_per_mtok: 1, output_per_mtok: 1}\n")
    with pytest.raises(ValueError, match="only USD"):
        load_price_table(bad)


def test_the_price_table_is_the_configured_one_else_the_checkouts(tmp_path: Path) -> None:
    assert price_table_path(str(tmp_path / "mine.yaml")) == tmp_path / "mine.yaml"
    assert price_table_path(None) == REPO / "infra" / "prices.yaml"


def test_token_limits_per_tenant_with_a_default(tmp_path: Path) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(
        "default: {input_per_mtok: 1, output_per_mtok: 1}\n"
        "budgets:\n  tokens: {default: 1000, tenants: {acme: 50}}\n",
        encoding="utf-8",
    )
    budgets = load_price_table(table).budgets
    assert (budgets.tokens.for_tenant("acme"), budgets.tokens.for_tenant("globex")) == (50, 1000)
    assert budgets.for_tenant("acme") is None  # no dollar budget
    assert budgets.any
    assert not PriceTable(default=ModelPrice(input_per_mtok=1, output_per_mtok=1)).budgets.any
    table.write_text(
        "default: {input_per_mtok: 1, output_per_mtok: 1}\nbudgets:\n  tokens: {default: -1}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"tokens\.default"):
        load_price_table(table)
