"""The Publisher port: envelopes built from the cause, declared publications, the in-memory fake."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from cairn_bus import (
    EventMeta,
    InMemoryPublisher,
    UndeclaredPublicationError,
    build_meta,
    derive_event_id,
    meta_from_headers,
)
from cairn_events import (
    CONTENT_TYPE_AVRO,
    CompletionGeneratedV1,
    Event,
    ModelPromotedV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    decode,
    encode,
)
from cairn_observability import extract_trace_context

NOW = datetime(2025, 3, 4, 9, 15, 22, tzinfo=UTC)
CAUSE = EventMeta(
    id="cause-1",
    type="cairn.request.submitted.v1",
    source="/cairn/gateway",
    time=NOW,
    subject="req-cause",
    correlation_id="corr-1",
    tenant="tenant-of-cause",
    replay_id="replay-9",
    traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    tracestate="congo=t61rcWkgMzE",
)


def test_a_new_trail_gets_a_random_id_and_the_request_as_correlation(
    request_submitted: RequestSubmittedV1,
) -> None:
    meta = build_meta(request_submitted, source="/cairn/gateway", now=NOW)
    assert meta == EventMeta(
        id=meta.id,
        type="cairn.request.submitted.v1",
        source="/cairn/gateway",
        time=NOW,
        content_type="application/json",
        subject="req-7f3c2a9e",
        dataschema="urn:cairn:schema:cairn.request.submitted:v1",
        correlation_id="req-7f3c2a9e",
        causation_id=None,
        tenant="default",
    )
    assert meta.id != build_meta(request_submitted, source="/cairn/gateway").id


def test_an_event_without_subject_or_cause_correlates_by_its_own_id(
    example_event: Callable[..., Event],
) -> None:
    promoted = example_event(ModelPromotedV1.event_type)
    meta = build_meta(promoted, source="/cairn/tuner")
    assert meta.subject is None
    assert meta.correlation_id == meta.id
    assert meta.tenant is None


def test_a_caused_event_derives_its_id_and_carries_the_cause(prompt_rendered: PromptRenderedV1) -> None:
    meta = build_meta(prompt_rendered, source="/cairn/prompt-store", cause=CAUSE)
    assert meta.id == derive_event_id("cause-1", "cairn.prompt.rendered.v1", "")
    assert meta.causation_id == "cause-1"
    assert meta.correlation_id == "corr-1"
    assert meta.replay_id == "replay-9"
    assert meta.subject == prompt_rendered.request_id
    assert meta.tenant == "acme-support"  # the event's own tenant wins over the cause's
    assert meta.time.tzinfo is not None


def test_the_discriminator_separates_events_of_one_type_from_one_cause(
    prompt_rendered: PromptRenderedV1,
) -> None:
    first = build_meta(prompt_rendered, source="/s", cause=CAUSE, discriminator="a")
    second = build_meta(prompt_rendered, source="/s", cause=CAUSE, discriminator="b")
    assert first.id == derive_event_id("cause-1", "cairn.prompt.rendered.v1", "a")
    assert second.id == derive_event_id("cause-1", "cairn.prompt.rendered.v1", "b")
    assert first.id != second.id


def test_a_cause_without_correlation_id_correlates_by_its_own_id(prompt_rendered: PromptRenderedV1) -> None:
    cause = EventMeta(id="root-1", type="t", source="s", time=NOW)
    assert build_meta(prompt_rendered, source="/s", cause=cause).correlation_id == "root-1"


def test_subject_and_tenant_come_from_the_cause_when_the_event_has_none(
    example_event: Callable[..., Event],
) -> None:
    promoted = example_event(ModelPromotedV1.event_type)
    meta = build_meta(promoted, source="/cairn/tuner", cause=CAUSE)
    assert meta.subject == "req-cause"
    assert meta.tenant == "tenant-of-cause"


def test_explicit_event_id_and_correlation_id_win(prompt_rendered: PromptRenderedV1) -> None:
    meta = build_meta(prompt_rendered, source="/s", cause=CAUSE, event_id="fixed", correlation_id="other")
    assert (meta.id, meta.correlation_id, meta.causation_id) == ("fixed", "other", "cause-1")


def test_trace_context_is_copied_from_the_cause_outside_a_span(prompt_rendered: PromptRenderedV1) -> None:
    meta = build_meta(prompt_rendered, source="/s", cause=CAUSE)
    assert meta.traceparent == CAUSE.traceparent
    assert meta.tracestate == CAUSE.tracestate


def test_no_trace_context_without_span_or_cause(request_submitted: RequestSubmittedV1) -> None:
    meta = build_meta(request_submitted, source="/s")
    assert (meta.traceparent, meta.tracestate) == (None, None)


def test_the_current_span_is_injected_and_wins_over_the_cause(prompt_rendered: PromptRenderedV1) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handle") as span:
        meta = build_meta(prompt_rendered, source="/s", cause=CAUSE)
    ctx = span.get_span_context()
    assert meta.traceparent == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    assert ctx.trace_id != 0x0AF7651916CD43DD8448EB211C80319C
    assert meta.tracestate is None


def test_the_current_span_carries_its_parents_trace_and_tracestate(prompt_rendered: PromptRenderedV1) -> None:
    parent = extract_trace_context(
        {"traceparent": CAUSE.traceparent or "", "tracestate": "congo=t61rcWkgMzE"}
    )
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handle", context=parent) as span:
        meta = build_meta(prompt_rendered, source="/s")
    assert (
        meta.traceparent == f"00-0af7651916cd43dd8448eb211c80319c-{span.get_span_context().span_id:016x}-01"
    )
    assert meta.tracestate == "congo=t61rcWkgMzE"


def test_build_gives_the_record_to_send(request_submitted: RequestSubmittedV1) -> None:
    publisher = InMemoryPublisher("/cairn/gateway")
    message = publisher.build(request_submitted)
    assert message.topic == "cairn.requests"
    assert message.key == b"req-7f3c2a9e"
    assert message.value == encode(request_submitted)
    assert decode(message.meta.type, message.value) == request_submitted
    assert message.headers == message.meta.to_headers()
    assert meta_from_headers(message.headers) == message.meta
    assert message.meta.source == "/cairn/gateway"
    assert message.event == request_submitted
    assert publisher.messages == []


def test_an_avro_publisher_writes_avro(request_submitted: RequestSubmittedV1) -> None:
    message = InMemoryPublisher(content_type=CONTENT_TYPE_AVRO).build(request_submitted)
    assert message.meta.content_type == "application/avro"
    assert ("content-type", b"application/avro") in message.headers
    assert decode(RequestSubmittedV1.event_type, message.value, CONTENT_TYPE_AVRO) == request_submitted
    assert not message.value.startswith(b"{")


async def test_publish_keeps_messages_in_order_and_returns_the_envelope(
    request_submitted: RequestSubmittedV1, prompt_rendered: PromptRenderedV1
) -> None:
    publisher = InMemoryPublisher()
    first = await publisher.publish(request_submitted)
    second = await publisher.publish(prompt_rendered, cause=first)
    assert [m.meta for m in publisher.messages] == [first, second]
    assert second.causation_id == first.id
    assert second.correlation_id == "req-7f3c2a9e"
    assert publisher.events() == [request_submitted, prompt_rendered]
    assert publisher.events(PromptRenderedV1.event_type) == [prompt_rendered]
    assert publisher.events(CompletionGeneratedV1.event_type) == []


async def test_publishing_twice_for_one_cause_gives_one_event_id(prompt_rendered: PromptRenderedV1) -> None:
    publisher = InMemoryPublisher()
    first = await publisher.publish(prompt_rendered, cause=CAUSE)
    again = await publisher.publish(prompt_rendered, cause=CAUSE)
    assert first.id == again.id
    assert publisher.messages[0].headers[:4] == publisher.messages[1].headers[:4]


async def test_an_undeclared_type_is_refused_and_nothing_is_sent(
    request_submitted: RequestSubmittedV1, prompt_rendered: PromptRenderedV1
) -> None:
    publisher = InMemoryPublisher("/cairn/safety", allowed_types={PromptRenderedV1.event_type})
    with pytest.raises(UndeclaredPublicationError) as info:
        await publisher.publish(request_submitted)
    assert str(info.value) == (
        "/cairn/safety does not declare cairn.request.submitted.v1; add it to the service's router"
    )
    assert publisher.messages == []
    await publisher.publish(prompt_rendered)
    assert len(publisher.messages) == 1


async def test_publish_counts_published_events(request_submitted: RequestSubmittedV1) -> None:
    labels = {"service": "gw-metrics", "topic": "cairn.requests", "event_type": "cairn.request.submitted.v1"}
    before = REGISTRY.get_sample_value("cairn_events_published_total", labels) or 0.0
    publisher = InMemoryPublisher("/cairn/gw-metrics")
    assert publisher.service == "gw-metrics"
    await publisher.publish(request_submitted)
    await publisher.publish(request_submitted)
    assert REGISTRY.get_sample_value("cairn_events_published_total", labels) == before + 2
