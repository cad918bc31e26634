"""Recording what inference's response cache did: `cairn_cache_requests_total{tenant,kind,result}`,
`cairn_cache_tokens_saved_total{tenant}` and `cairn_cache_cost_saved_usd_total{tenant}`.

Inference calls `record_cache` once per request the cache saw (a hit, a miss or a bypass), after the
completion is published. Only a hit saves anything: its answer's tokens (input and output, as stored
with it) and what generating them would have cost are added to the saved counters; a miss or a bypass
is only counted.
"""

from __future__ import annotations

from cairn_events import CacheOutcome
from cairn_observability.metrics import CACHE_COST_SAVED_USD, CACHE_REQUESTS, CACHE_TOKENS_SAVED

__all__ = ["record_cache"]


def record_cache(
    outcome: CacheOutcome, tenant: str, input_tokens: int, output_tokens: int, cost_usd: float | None
) -> None:
    """Count one request the response cache saw by tenant, kind (empty for a bypass) and result; for a
    hit, add `input_tokens + output_tokens` (the reused answer's usage) to the tokens saved and
    `cost_usd` (what that usage would have cost; None when the model has no price) to the cost saved.
    Tokens and cost of a miss or a bypass are not saved and are ignored."""
    CACHE_REQUESTS.labels(tenant, outcome.kind or "", outcome.result).inc()
    if outcome.result != "hit":
        return
    CACHE_TOKENS_SAVED.labels(tenant).inc(max(0, input_tokens) + max(0, output_tokens))
    if cost_usd is not None:
        CACHE_COST_SAVED_USD.labels(tenant).inc(max(0.0, cost_usd))
