"""The price table: what a model's tokens cost, and each tenant's daily budget (`infra/prices.yaml`).

Inference records `cairn_cost_usd_total{tenant,model}` and `cairn_cost_budget_usd{tenant}` from it;
`cairn report` prices the token usage of stored completions with the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Budgets", "ModelPrice", "PriceTable", "load_price_table"]

_MILLION = 1_000_000


class ModelPrice(BaseModel):
    """US dollars per million tokens, input and output apart."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float = Field(ge=0, description="USD per 1M input (prompt) tokens.")
    output_per_mtok: float = Field(ge=0, description="USD per 1M output (completion) tokens.")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The cost of one call in US dollars."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / _MILLION


class TokenLimits(BaseModel):
    """Daily token limits (input plus output tokens): per named tenant, and a default for the others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: int | None = Field(None, ge=0, description="Tokens per day for a tenant not named.")
    tenants: dict[str, int] = Field({}, description="Tokens per day, by tenant.")

    def for_tenant(self, tenant: str) -> int | None:
        """The tenant's daily token limit, or None when neither it nor a default is set."""
        return self.tenants.get(tenant, self.default)


class Budgets(BaseModel):
    """Daily cost budgets: per named tenant, and a default for the others (none: no budget); and daily
    token limits the same way."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: float | None = Field(None, ge=0, description="USD per day for a tenant not named.")
    tenants: dict[str, float] = Field({}, description="USD per day, by tenant.")
    tokens: TokenLimits = Field(TokenLimits(), description="Tokens per day (input + output), by tenant.")

    def for_tenant(self, tenant: str) -> float | None:
        """The tenant's daily budget, or None when neither it nor a default is set."""
        return self.tenants.get(tenant, self.default)

    @property
    def any(self) -> bool:
        """Whether any tenant has a budget or a token limit."""
        return (
            self.default is not None
            or bool(self.tenants)
            or self.tokens.default is not None
            or bool(self.tokens.tenants)
        )


class PriceTable(BaseModel):
    """Prices by model with a default for unknown models, and tenant budgets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field("USD", description="The currency of every figure (only USD is supported).")
    default: ModelPrice = Field(description="The price of a model not in `models`.")
    models: dict[str, ModelPrice] = Field({}, description="Prices by model name.")
    budgets: Budgets = Field(Budgets(), description="Daily budgets by tenant.")

    def price_for(self, model: str | None, base_model: str | None = None) -> ModelPrice:
        """The price of `model`, else of the base model that served it, else the default."""
        for name in (model, base_model):
            if name and name in self.models:
                return self.models[name]
        return self.default

    def cost(
        self, model: str | None, input_tokens: int, output_tokens: int, base_model: str | None = None
    ) -> float:
        """US dollars for one call of `model` (see `price_for`)."""
        return self.price_for(model, base_model).cost(input_tokens, output_tokens)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PriceTable:
        """A table from parsed YAML; raises ValueError (pydantic's) when it is malformed."""
        table = cls.model_validate(dict(data))
        if table.currency != "USD":
            raise ValueError(f"price table currency {table.currency!r}: only USD is supported")
        return table


def load_price_table(path: str | Path) -> PriceTable:
    """The price table in the YAML file at `path`."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a price table is a mapping with `default`, `models` and `budgets`")
    return PriceTable.from_mapping(data)


def price_table_path(configured: str | None) -> Path | None:
    """The price table a service reads: `configured` (`CAIRN_PRICE_TABLE`), else the checkout's
    `infra/prices.yaml` (above this file, or under the working folder as in the image's /app) when it
    exists; None: no prices."""
    if configured:
        return Path(configured).expanduser()
    here = Path(__file__).resolve()
    for folder in [*here.parents, Path.cwd()]:
        candidate = folder / "infra" / "prices.yaml"
        if candidate.is_file():
            return candidate
    return None
