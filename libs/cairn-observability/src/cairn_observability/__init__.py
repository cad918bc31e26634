"""Cairn observability: structlog JSON logs, OpenTelemetry traces through Kafka headers, metrics."""

from cairn_observability.logging import bind_event_context, configure_logging, get_logger
from cairn_observability.metrics import (
    DEADLETTERS,
    EVENTS_CONSUMED,
    EVENTS_PUBLISHED,
    HANDLER_SECONDS,
    serve_metrics,
)
from cairn_observability.tracing import (
    configure_tracing,
    extract_trace_context,
    get_tracer,
    inject_trace_headers,
)

__all__ = [
    "DEADLETTERS",
    "EVENTS_CONSUMED",
    "EVENTS_PUBLISHED",
    "HANDLER_SECONDS",
    "bind_event_context",
    "configure_logging",
    "configure_tracing",
    "extract_trace_context",
    "get_logger",
    "get_tracer",
    "inject_trace_headers",
    "serve_metrics",
]
