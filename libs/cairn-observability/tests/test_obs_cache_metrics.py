"""What the response cache did, counted: requests by kind and result; tokens and cost saved by hits."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from cairn_events import CacheOutcome
from cairn_observability import record_cache

HIT = CacheOutcome(result="hit", kind="exact", source_request_id="req-earlier")
MISS = CacheOutcome(result="miss", kind="exact")
BYPASS = CacheOutcome(result="bypass", reason="not deterministic")


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _saved(tenant: str) -> tuple[float, float]:
    return (
        _sample("cairn_cache_tokens_saved_total", tenant=tenant),
        _sample("cairn_cache_cost_saved_usd_total", tenant=tenant),
    )


def test_a_hit_is_counted_and_saves_its_tokens_and_cost() -> None:
    tenant = "cache-hit"
    before = _sample("cairn_cache_requests_total", tenant=tenant, kind="exact", result="hit")
    record_cache(HIT, tenant, input_tokens=120, output_tokens=30, cost_usd=0.0025)
    record_cache(HIT, tenant, input_tokens=10, output_tokens=5, cost_usd=0.0005)
    assert _sample("cairn_cache_requests_total", tenant=tenant, kind="exact", result="hit") == before + 2
    tokens, cost = _saved(tenant)
    assert tokens == 165
    assert cost == pytest.approx(0.003)


@pytest.mark.parametrize(("outcome", "kind"), [(MISS, "exact"), (BYPASS, "")], ids=["miss", "bypass"])
def test_a_miss_or_bypass_is_counted_and_saves_nothing(outcome: CacheOutcome, kind: str) -> None:
    tenant = f"cache-{outcome.result}"
    record_cache(outcome, tenant, input_tokens=120, output_tokens=30, cost_usd=0.0025)
    assert _sample("cairn_cache_requests_total", tenant=tenant, kind=kind, result=outcome.result) == 1
    assert _saved(tenant) == (0.0, 0.0)


def test_a_hit_on_an_unpriced_model_saves_tokens_but_no_cost() -> None:
    tenant = "cache-unpriced"
    record_cache(HIT, tenant, input_tokens=7, output_tokens=3, cost_usd=None)
    assert _saved(tenant) == (10.0, 0.0)


def test_hits_are_counted_per_tenant() -> None:
    record_cache(HIT, "cache-a", input_tokens=1, output_tokens=1, cost_usd=1.0)
    record_cache(HIT, "cache-b", input_tokens=2, output_tokens=2, cost_usd=2.0)
    assert _saved("cache-a") == (2.0, 1.0)
    assert _saved("cache-b") == (4.0, 2.0)
