"""W3C trace context through Kafka headers, and the tracer provider set-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._once import Once

from cairn_observability import configure_tracing, extract_trace_context, get_tracer, inject_trace_headers

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def global_provider_slot() -> Iterator[None]:
    """Let the test install a global TracerProvider (settable once per process) and put the old one back."""
    saved = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE)
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    try:
        yield
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


def test_nothing_is_injected_outside_a_span() -> None:
    assert inject_trace_headers() == {}


def test_inject_writes_the_current_span_into_the_carrier() -> None:
    carrier = {"content-type": "application/json"}
    with TracerProvider().get_tracer("t").start_as_current_span("produce") as span:
        returned = inject_trace_headers(carrier)
    ctx = span.get_span_context()
    assert returned is carrier
    assert carrier == {
        "content-type": "application/json",
        "traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}",
    }


def test_inject_then_extract_gives_back_the_span() -> None:
    with TracerProvider().get_tracer("t").start_as_current_span("produce") as span:
        headers = inject_trace_headers()
    extracted = trace.get_current_span(extract_trace_context(headers)).get_span_context()
    original = span.get_span_context()
    assert (extracted.trace_id, extracted.span_id) == (original.trace_id, original.span_id)
    assert extracted.trace_flags.sampled is True
    assert extracted.is_remote is True


def test_extract_then_inject_keeps_trace_id_and_tracestate() -> None:
    parent = extract_trace_context({"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"})
    remote = trace.get_current_span(parent).get_span_context()
    assert remote.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert remote.span_id == 0xB7AD6B7169203331
    with TracerProvider().get_tracer("t").start_as_current_span("consume", context=parent) as span:
        headers = inject_trace_headers()
    assert headers == {
        "traceparent": f"00-0af7651916cd43dd8448eb211c80319c-{span.get_span_context().span_id:016x}-01",
        "tracestate": "congo=t61rcWkgMzE",
    }


@pytest.mark.parametrize(
    "headers", [{}, {"traceparent": "garbage"}, {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"}]
)
def test_missing_or_invalid_trace_context_extracts_to_no_parent(headers: dict[str, str]) -> None:
    assert trace.get_current_span(extract_trace_context(headers)).get_span_context().is_valid is False


def test_configure_tracing_exports_every_span_to_the_extra_exporter(global_provider_slot: None) -> None:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("safety", extra_exporter=exporter)
    assert trace.get_tracer_provider() is provider
    parent = extract_trace_context({"traceparent": TRACEPARENT})
    tracer = get_tracer("cairn.safety")
    with (
        tracer.start_as_current_span("cairn.prompts process", context=parent, kind=SpanKind.CONSUMER),
        tracer.start_as_current_span("screen"),
    ):
        pass
    inner, outer = exporter.get_finished_spans()  # exported as they end: no flush needed
    assert (outer.name, inner.name) == ("cairn.prompts process", "screen")
    assert outer.kind is SpanKind.CONSUMER
    assert outer.context.trace_id == inner.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert outer.parent is not None
    assert outer.parent.span_id == 0xB7AD6B7169203331
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert outer.resource.attributes["service.name"] == "cairn-safety"
    assert outer.instrumentation_scope is not None
    assert outer.instrumentation_scope.name == "cairn.safety"
    provider.shutdown()


def test_configure_tracing_without_exporters_still_traces(global_provider_slot: None) -> None:
    provider = configure_tracing("audit")
    with get_tracer("cairn.audit").start_as_current_span("store") as span:
        assert span.get_span_context().is_valid
        assert inject_trace_headers()["traceparent"].startswith("00-")
    assert provider.resource.attributes["service.name"] == "cairn-audit"
    provider.shutdown()


def test_a_configured_endpoint_turns_otlp_export_on(global_provider_slot: None) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = configure_tracing("inference", "none", "http://collector:4318", environ={})
    [processor] = provider._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    exporter = processor._batch_processor._exporter
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://collector:4318/v1/traces"
    provider.shutdown()


def test_the_standard_variable_also_turns_otlp_export_on(global_provider_slot: None) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = configure_tracing("safety", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    [processor] = provider._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    assert isinstance(processor._batch_processor._exporter, OTLPSpanExporter)
    provider.shutdown()


def test_no_endpoint_exports_nothing_and_an_unknown_exporter_is_refused(global_provider_slot: None) -> None:
    provider = configure_tracing("audit", environ={})
    assert provider._active_span_processor._span_processors == ()
    provider.shutdown()
    with pytest.raises(ValueError, match="unknown traces exporter"):
        configure_tracing("audit", "zipkin", environ={})


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://c:4318", "http://c:4318/v1/traces"),
        ("http://c:4318/", "http://c:4318/v1/traces"),
        ("https://c/otlp/v1/traces", "https://c/otlp/v1/traces"),
    ],
)
def test_otlp_traces_url(endpoint: str, url: str) -> None:
    from cairn_observability.tracing import otlp_traces_url

    assert otlp_traces_url(endpoint) == url
