"""OpenTelemetry tracing: provider set-up and W3C trace context carried in Kafka headers."""

from __future__ import annotations

from collections.abc import Mapping

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
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


class _DictGetter(Getter[Mapping[str, str]]):
    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


class _DictSetter(Setter[dict[str, str]]):
    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key] = value


def configure_tracing(
    service: str,
    exporter: str = "none",
    endpoint: str | None = None,
    extra_exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Install a TracerProvider named after the service.

    `exporter` is `none`, `console` or `otlp` (the OTLP exporter package must be installed);
    `extra_exporter` (tests) receives every span synchronously.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": f"cairn-{service}"}))
    processors: list[SpanProcessor] = []
    if exporter == "console":
        processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter,
        )

        processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
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
