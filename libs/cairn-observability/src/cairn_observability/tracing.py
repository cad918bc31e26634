"""OpenTelemetry tracing: provider set-up and W3C trace context carried in Kafka headers.

Besides the trace and span ids, the trace context carries when the request was submitted: the
prompt store adds a `cairn=<epoch ms>` member to `tracestate` (`request_started`), every later hop
inherits it through the `traceparent`/`tracestate` headers, and the service that publishes the
final response reads it back (`request_started_at`) to observe the request's whole duration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
REQUEST_START_KEY = "cairn"
"""The `tracestate` member carrying when the request was submitted (milliseconds since the epoch)."""
OTLP_PACKAGE = "opentelemetry-exporter-otlp-proto-http"


class _DictGetter(Getter[Mapping[str, str]]):
    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


class _DictSetter(Setter[dict[str, str]]):
    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key] = value


def otlp_traces_url(endpoint: str) -> str:
    """The traces URL of an OTLP/HTTP endpoint: `/v1/traces` appended to a bare `http://host:4318`."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def _otlp_exporter(endpoint: str | None) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - the package is pinned in requirements/dev.txt
        raise RuntimeError(
            f"OTLP trace export is configured but {OTLP_PACKAGE} is not installed: "
            f"pip install {OTLP_PACKAGE} (pinned in requirements/constraints.txt)"
        ) from exc
    # no endpoint: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT itself
    return OTLPSpanExporter(endpoint=otlp_traces_url(endpoint) if endpoint else None)


def configure_tracing(
    service: str,
    exporter: str = "none",
    endpoint: str | None = None,
    extra_exporter: SpanExporter | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Install a TracerProvider named after the service.

    `exporter` is `none`, `console` or `otlp` (OTLP over HTTP/protobuf, to `endpoint` or the
    standard `OTEL_EXPORTER_OTLP_ENDPOINT`). With `none`, an endpoint that is configured
    (`endpoint`, i.e. `CAIRN_OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` /
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` in the environment) turns OTLP export on. Without any,
    spans are still made (trace ids join the hops in the audit trail and the logs) but not exported.
    `extra_exporter` (tests) receives every span synchronously.
    """
    env = os.environ if environ is None else environ
    standard = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if exporter == "none" and (endpoint or standard):
        exporter = "otlp"
    provider = TracerProvider(resource=Resource.create({"service.name": f"cairn-{service}"}))
    processors: list[SpanProcessor] = []
    if exporter == "console":
        processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        processors.append(BatchSpanProcessor(_otlp_exporter(endpoint)))
    elif exporter != "none":
        raise ValueError(f"unknown traces exporter {exporter!r}: use none, console or otlp")
    if extra_exporter is not None:
        processors.append(SimpleSpanProcessor(extra_exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def get_tracer(name: str) -> trace.Tracer:
    """A tracer from the global provider."""
    return trace.get_tracer(name)


def inject_trace_headers(carrier: dict[str, str] | None = None) -> dict[str, str]:
    """Write `traceparent`/`tracestate` of the current span into `carrier` (a new dict if None)."""
    out: dict[str, str] = {} if carrier is None else carrier
    _PROPAGATOR.inject(out, setter=_DictSetter())
    return out


def extract_trace_context(headers: Mapping[str, str]) -> otel_context.Context:
    """The OpenTelemetry context carried by `traceparent`/`tracestate` in `headers`."""
    return _PROPAGATOR.extract(headers, getter=_DictGetter())


@contextmanager
def request_started(at: datetime) -> Iterator[None]:
    """Inside the block, the current trace context also says the request was submitted `at`.

    Events published inside carry it in `tracestate` (member `cairn`), and so do the spans and
    events of every later hop. Nothing changes outside a valid trace (tracing off, no parent).
    """
    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        yield
        return
    value = str(max(0, int(at.timestamp() * 1000)))
    state = current.trace_state
    state = (
        state.update(REQUEST_START_KEY, value)
        if REQUEST_START_KEY in state
        else state.add(REQUEST_START_KEY, value)
    )
    carrier = SpanContext(current.trace_id, current.span_id, current.is_remote, current.trace_flags, state)
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(carrier)))
    try:
        yield
    finally:
        otel_context.detach(token)


def request_started_at() -> datetime | None:
    """When the current trace's request was submitted, if its trace context says (`request_started`)."""
    value = trace.get_current_span().get_span_context().trace_state.get(REQUEST_START_KEY)
    if value is None or not value.isdigit():
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC)
