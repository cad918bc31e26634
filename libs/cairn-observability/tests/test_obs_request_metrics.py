"""A request's start carried in the trace context across hops, and how its end is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from cairn_observability import (
    extract_trace_context,
    inject_trace_headers,
    record_request_outcome,
    request_started,
    request_started_at,
)

SUBMITTED = datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_trace_id_and_request_start_travel_through_every_hop() -> None:
    """prompt-store → retriever → safety → inference → safety, each hop a consumer span whose parent
    comes from the headers the previous hop published: one trace id, and the start on every hop."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    headers: dict[str, str] = {}
    with tracer.start_as_current_span("cairn.requests process", kind=SpanKind.CONSUMER):
        with request_started(SUBMITTED):
            headers = inject_trace_headers()
        assert request_started_at() is None  # only inside the block
    starts = []
    for hop in ("cairn.prompts", "cairn.contexts", "cairn.screenings", "cairn.completions"):
        parent = extract_trace_context(headers)
        with tracer.start_as_current_span(f"{hop} process", context=parent, kind=SpanKind.CONSUMER):
            starts.append(request_started_at())
            headers = inject_trace_headers()
    spans = exporter.get_finished_spans()
    assert len(spans) == 5
    assert len({s.context.trace_id for s in spans}) == 1
    for child, parent_span in zip(spans[1:], spans[:-1], strict=True):
        assert child.parent is not None
        assert child.parent.span_id == parent_span.context.span_id
    assert starts == [SUBMITTED.replace(microsecond=250000)] * 4
    assert headers["tracestate"].startswith("cairn=")


def test_an_upstream_tracestate_is_kept() -> None:
    provider = TracerProvider()
    parent = extract_trace_context(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "congo=t61"}
    )
    with provider.get_tracer("t").start_as_current_span("x", context=parent), request_started(SUBMITTED):
        state = inject_trace_headers()["tracestate"]
    assert "congo=t61" in state
    assert f"cairn={int(SUBMITTED.timestamp() * 1000)}" in state


def test_without_a_trace_nothing_is_carried() -> None:
    with request_started(SUBMITTED):
        assert request_started_at() is None
        assert inject_trace_headers() == {}


def test_a_finished_request_is_counted_and_timed() -> None:
    before = _sample("cairn_requests_total", status="rejected", tenant="obs-t", prompt="qa")
    count = _sample("cairn_request_duration_seconds_count", status="rejected", tenant="obs-t")
    seconds = record_request_outcome(
        "rejected", "obs-t", "qa", SUBMITTED + timedelta(seconds=3), started_at=SUBMITTED
    )
    assert seconds == 3.0
    assert _sample("cairn_requests_total", status="rejected", tenant="obs-t", prompt="qa") == before + 1
    assert _sample("cairn_request_duration_seconds_count", status="rejected", tenant="obs-t") == count + 1


def test_the_duration_comes_from_the_trace_context_or_is_not_made_up() -> None:
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("hop"), request_started(SUBMITTED):
        assert record_request_outcome("completed", "obs-t2", None, SUBMITTED + timedelta(seconds=2)) == 2.0
    assert _sample("cairn_requests_total", status="completed", tenant="obs-t2", prompt="unknown") == 1
    assert record_request_outcome("failed", "obs-t2", "qa", SUBMITTED) is None
    assert _sample("cairn_request_duration_seconds_count", status="failed", tenant="obs-t2") == 0
    assert trace.get_current_span().get_span_context().is_valid is False


def test_a_replayed_request_is_counted_apart_from_live_traffic() -> None:
    done = SUBMITTED + timedelta(seconds=4)
    seconds = record_request_outcome("completed", "obs-replay", "qa", done, started_at=SUBMITTED, replay=True)
    assert seconds == 4.0
    assert _sample("cairn_replay_requests_total", status="completed", tenant="obs-replay", prompt="qa") == 1
    assert _sample("cairn_requests_total", status="completed", tenant="obs-replay", prompt="qa") == 0
    assert _sample("cairn_request_duration_seconds_count", status="completed", tenant="obs-replay") == 0
    record_request_outcome("completed", "obs-replay", "qa", done, started_at=SUBMITTED)
    assert _sample("cairn_requests_total", status="completed", tenant="obs-replay", prompt="qa") == 1
    assert _sample("cairn_replay_requests_total", status="completed", tenant="obs-replay", prompt="qa") == 1
