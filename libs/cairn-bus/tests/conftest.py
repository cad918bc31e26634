"""Fixtures of the cairn-bus unit tests: schema-example events, a fresh tracer provider, no broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from cairn_events import Event, PromptRenderedV1, RequestSubmittedV1
from cairn_observability import configure_tracing
from cairn_testing import schema_examples


def _example_event(event_type: str, name: str | None = None) -> Event:
    for example in schema_examples(event_type):
        if name is None or example.path.name == name:
            return example.event()
    raise LookupError(f"no example {name or ''} for {event_type}")


@pytest.fixture
def example_event() -> Callable[..., Event]:
    """`example_event(event_type, name=None)`: the schema example of a type (file `name`, else the first)."""
    return _example_event


@pytest.fixture
def request_submitted() -> RequestSubmittedV1:
    """A valid `cairn.request.submitted.v1` (request_id `req-7f3c2a9e`, tenant `default`)."""
    event = _example_event(RequestSubmittedV1.event_type, "v1-minimal.json")
    assert isinstance(event, RequestSubmittedV1)
    return event


@pytest.fixture
def prompt_rendered() -> PromptRenderedV1:
    """A valid `cairn.prompt.rendered.v1` (tenant `acme-support`)."""
    event = _example_event(PromptRenderedV1.event_type)
    assert isinstance(event, PromptRenderedV1)
    return event


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """A fresh global TracerProvider (via `configure_tracing`) whose spans land in memory.

    OpenTelemetry lets the global provider be set once per process; the test resets that guard
    (as OpenTelemetry's own test utilities do) and puts the previous provider back afterwards.
    """
    saved = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE)
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    exporter = InMemorySpanExporter()
    provider = configure_tracing("bus-test", extra_exporter=exporter)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved
