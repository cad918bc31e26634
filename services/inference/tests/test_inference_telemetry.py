"""GenAI spans and metrics around a backend, read back from an in-memory span exporter."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from cairn_bus import InMemoryInbox, InMemoryPublisher
from cairn_events import ChatMessage, GenerationParams
from cairn_inference.adapters.telemetry import TracedBackend, provider_of
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.domain.completion import ModelError
from cairn_inference.domain.registry import RegistryView
from cairn_inference.handlers import on_input_screened
from cairn_inference.settings import Settings

from .conftest import FakeBackend, screened

MESSAGES = [ChatMessage(role="user", content="hi")]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_generation_is_a_chat_span_with_genai_attributes(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")
    traced = TracedBackend(FakeBackend(), tracer=tracer, server_address="sglang", server_port=30000)
    labels = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "fake", "gen_ai_request_model": "smol"}
    before = _sample("gen_ai_client_token_usage_sum", **labels, gen_ai_token_type="output")
    with tracer.start_as_current_span("cairn.screenings process"):
        params = GenerationParams(max_tokens=32, temperature=0.5, top_p=0.9, stop=["\n"], seed=3)
        await traced.generate(MESSAGES, params, model="smol", adapter="support-v2")
    chat, parent = exporter.get_finished_spans()
    assert chat.name == "chat smol"
    assert chat.kind is SpanKind.CLIENT
    assert chat.parent is not None
    assert chat.parent.span_id == parent.context.span_id
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "fake"
    assert attributes["gen_ai.request.model"] == "smol"
    assert attributes["gen_ai.request.max_tokens"] == 32
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.seed"] == 3
    assert attributes["gen_ai.request.stop_sequences"] == ("\n",)
    assert attributes["gen_ai.usage.input_tokens"] == 42
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.model"] == "smol"
    assert attributes["cairn.inference.adapter"] == "support-v2"
    assert attributes["cairn.inference.time_to_first_token_ms"] == 3.25
    assert attributes["server.address"] == "sglang"
    assert attributes["server.port"] == 30000
    assert chat.status.status_code is StatusCode.UNSET
    after = _sample("gen_ai_client_token_usage_sum", **labels, gen_ai_token_type="output")
    assert after - before == 7


async def test_a_failed_generation_marks_its_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    traced = TracedBackend(FakeBackend(error=ModelError("too long")), tracer=provider.get_tracer("test"))
    with pytest.raises(ModelError):
        await traced.generate(MESSAGES, GenerationParams(), model="smol")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ModelError"
    assert [e.name for e in span.events] == ["exception"]


async def test_an_abandoned_generation_is_marked_cancelled(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    traced = TracedBackend(FakeBackend(delay=10), tracer=provider.get_tracer("test"))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(traced.generate(MESSAGES, GenerationParams(), model="smol"), 0.05)
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {})["error.type"] == "cancelled"


async def test_the_handler_records_a_chat_span_per_generation(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    async with build(
        Settings(model_name="smol"),
        publisher,
        backend=FakeBackend(),
        inbox=InMemoryInbox(),
        tracer=provider.get_tracer("test"),
        registry=RegistryView(),
    ) as deps:
        message = InMemoryPublisher("/cairn/safety").build(screened(model="smol"))
        event = screened(model="smol")
        await on_input_screened(event, message.meta, deps)
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat smol"
    assert dict(span.attributes or {})["gen_ai.usage.output_tokens"] == 7


def test_providers_are_named_after_the_backend() -> None:
    assert provider_of("transformers-cpu") == "transformers"
    assert provider_of("sglang") == "sglang"
