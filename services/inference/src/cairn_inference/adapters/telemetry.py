"""GenAI telemetry around any `ModelBackend`: a `chat <model>` span with the OpenTelemetry GenAI
semantic-convention attributes, the GenAI client metrics for Prometheus, and the cost of each
completion priced with the price table (`cairn_cost_usd_total`, `cairn_cost_budget_usd`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from cairn_events import ChatMessage, GenerationParams, TokenUsage
from cairn_inference.domain.completion import Completion
from cairn_inference.ports import ModelBackend
from cairn_observability import (
    COST_BUDGET_USD,
    COST_USD,
    GEN_AI_OPERATION_DURATION,
    GEN_AI_TOKEN_USAGE,
    TIME_TO_FIRST_TOKEN,
)
from cairn_observability.pricing import PriceTable

__all__ = [
    "OPERATION_SECONDS",
    "TOKEN_USAGE",
    "TracedBackend",
    "provider_of",
    "publish_budgets",
    "record_cost",
]

# the GenAI client metrics are cairn-observability's (its metric catalog), shared with other services;
# time to first token is the catalog's `cairn_time_to_first_token_seconds` (what the dashboards plot)
TOKEN_USAGE = GEN_AI_TOKEN_USAGE
OPERATION_SECONDS = GEN_AI_OPERATION_DURATION


def publish_budgets(prices: PriceTable) -> None:
    """`cairn_cost_budget_usd` for every tenant the table names (others get theirs on first use)."""
    for tenant, budget in prices.budgets.tenants.items():
        COST_BUDGET_USD.labels(tenant).set(budget)


def record_cost(
    prices: PriceTable, *, tenant: str, model: str, usage: TokenUsage, base_model: str | None = None
) -> float:
    """Add one completion's cost to `cairn_cost_usd_total{tenant,model}` (and make sure the tenant's
    budget is published); returns the cost in US dollars."""
    cost = prices.cost(model, usage.input_tokens, usage.output_tokens, base_model=base_model)
    COST_USD.labels(tenant, model).inc(cost)
    budget = prices.budgets.for_tenant(tenant)
    if budget is not None:
        COST_BUDGET_USD.labels(tenant).set(budget)
    return cost


def provider_of(backend: str) -> str:
    """The `gen_ai.provider.name` of a backend: `sglang`, or `transformers` for the in-process one."""
    return "transformers" if backend.startswith("transformers") else backend


class TracedBackend:
    """Wraps a backend: every `generate` runs in a child span `chat <model>` (kind CLIENT).

    Request attributes are set before the call, response attributes (usage, finish reason,
    response model, time to first token) after it; a failure sets `error.type` and the span
    status. The wrapped backend's behaviour is unchanged.
    """

    def __init__(
        self,
        inner: ModelBackend,
        *,
        tracer: trace.Tracer | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._tracer = tracer or trace.get_tracer("cairn.inference")
        self._server = (server_address, server_port)

    @property
    def waiting(self) -> int | None:
        """Requests queued or generating on the wrapped backend, when it counts them (routing's overload
        check); None otherwise."""
        waiting = getattr(self.inner, "waiting", None)
        return waiting if isinstance(waiting, int) else None

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        model: str,
        adapter: str | None = None,
    ) -> Completion:
        provider = provider_of(self.inner.name)
        labels = {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": provider,
            "gen_ai_request_model": model,
        }
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"chat {model}", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", provider)
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.request.max_tokens", params.max_tokens)
            span.set_attribute("gen_ai.request.temperature", params.temperature)
            span.set_attribute("gen_ai.request.top_p", params.top_p)
            if params.stop:
                span.set_attribute("gen_ai.request.stop_sequences", list(params.stop))
            if params.seed is not None:
                span.set_attribute("gen_ai.request.seed", params.seed)
            if adapter is not None:
                span.set_attribute("cairn.inference.adapter", adapter)
            if self._server[0]:
                span.set_attribute("server.address", self._server[0])
            if self._server[1]:
                span.set_attribute("server.port", self._server[1])
            try:
                completion = await self.inner.generate(messages, params, model=model, adapter=adapter)
            except asyncio.CancelledError:
                self._failed(span, "cancelled", "generation abandoned (timeout or shutdown)", labels, started)
                raise
            except Exception as exc:
                span.record_exception(exc)
                self._failed(span, type(exc).__name__, str(exc), labels, started)
                raise
            span.set_attribute("gen_ai.response.model", completion.model)
            span.set_attribute("gen_ai.response.finish_reasons", [completion.finish_reason])
            span.set_attribute("gen_ai.usage.input_tokens", completion.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", completion.usage.output_tokens)
            span.set_attribute("cairn.inference.backend", completion.backend)
            span.set_attribute("cairn.inference.latency_ms", completion.latency_ms)
            if completion.ttft_ms is not None:
                span.set_attribute("cairn.inference.time_to_first_token_ms", completion.ttft_ms)
                TIME_TO_FIRST_TOKEN.labels(gen_ai_request_model=model).observe(completion.ttft_ms / 1000)
            if completion.model_version is not None:
                span.set_attribute("cairn.inference.model_version", completion.model_version)
        TOKEN_USAGE.labels(**labels, gen_ai_token_type="input").observe(completion.usage.input_tokens)
        TOKEN_USAGE.labels(**labels, gen_ai_token_type="output").observe(completion.usage.output_tokens)
        OPERATION_SECONDS.labels(**labels, error_type="").observe(time.perf_counter() - started)
        return completion

    @staticmethod
    def _failed(
        span: trace.Span, error_type: str, message: str, labels: dict[str, str], started: float
    ) -> None:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, message))
        OPERATION_SECONDS.labels(**labels, error_type=error_type).observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()
