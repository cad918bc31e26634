"""The CLI acts as an upstream system: each request it submits starts the request's trace."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from cairn_bus import EventMeta
from cairn_bus.publisher import Publisher
from cairn_events import Event
from cairn_observability import configure_tracing, get_tracer


async def publish_traced(publisher: Publisher, event: Event) -> EventMeta:
    """Publish `event` inside a producer span, so its `traceparent` starts the trace every hop joins."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):  # nothing set up yet
        configure_tracing("cli")
    with get_tracer("cairn.cli").start_as_current_span(
        f"{event.topic} publish", kind=SpanKind.PRODUCER
    ) as span:
        span.set_attribute("messaging.system", "kafka")
        span.set_attribute("messaging.destination.name", event.topic)
        meta = await publisher.publish(event)
        span.set_attribute("messaging.message.id", meta.id)
        return meta
