"""Dispatcher: one consumed record → a handler call, a skip, or a dead letter; never a stuck consumer."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from cairn_bus import (
    Dispatcher,
    EventMeta,
    EventRouter,
    InMemoryPublisher,
    Origin,
    Outcome,
    RawRecord,
    TransientError,
    derive_event_id,
)
from cairn_bus.publisher import OutgoingMessage
from cairn_events import (
    CONTENT_TYPE_AVRO,
    DeadLetterKind,
    DeadLetterRecordedV1,
    Event,
    PromptRenderedV1,
    RequestSubmittedV1,
)

GROUP = "cairn-test"
Header = tuple[str, bytes | None]
TOPIC = "cairn.requests"


@dataclass
class Recorder:
    """The handler's dependencies: records calls, raises the scripted errors first."""

    failures: list[BaseException] = field(default_factory=list)
    always: BaseException | None = None
    calls: list[tuple[Event, EventMeta]] = field(default_factory=list)
    logged_context: list[dict[str, object]] = field(default_factory=list)
    publisher: InMemoryPublisher | None = None


async def on_request(event: Event, meta: EventMeta, deps: Recorder) -> None:
    deps.calls.append((event, meta))
    deps.logged_context.append(dict(structlog.contextvars.get_contextvars()))
    if deps.always is not None:
        raise deps.always
    if deps.failures:
        raise deps.failures.pop(0)
    if deps.publisher is not None:
        assert isinstance(event, RequestSubmittedV1)
        rendered = PromptRenderedV1(
            request_id=event.request_id,
            tenant=event.tenant,
            prompt_name="support-answer",
            prompt_version=1,
            messages=[{"role": "user", "content": "hi"}],
            params=event.params,
            rendered_at=event.submitted_at,
        )
        await deps.publisher.publish(rendered, cause=meta)


def make_router() -> EventRouter[Recorder]:
    router: EventRouter[Recorder] = EventRouter("dispatch-test")
    router.handler(RequestSubmittedV1)(on_request)
    router.publishes(PromptRenderedV1)
    return router


@dataclass
class Setup:
    deps: Recorder
    publisher: InMemoryPublisher
    dispatcher: Dispatcher[Recorder]

    def dead_letters(self) -> list[tuple[EventMeta, DeadLetterRecordedV1]]:
        out = []
        for message in self.publisher.messages:
            assert isinstance(message.event, DeadLetterRecordedV1)
            out.append((message.meta, message.event))
        return out


@pytest.fixture
def setup() -> Setup:
    deps = Recorder()
    publisher = InMemoryPublisher("/cairn/dispatch-test")
    dispatcher = Dispatcher(make_router(), deps, publisher, group_id=GROUP, max_attempts=3, retry_backoff_s=0)
    return Setup(deps, publisher, dispatcher)


def record_of(message: OutgoingMessage, offset: int = 0, **changes: object) -> RawRecord:
    fields: dict[str, object] = {
        "topic": message.topic,
        "partition": 0,
        "offset": offset,
        "value": message.value,
        "key": message.key,
        "headers": list(message.headers),
        "timestamp_ms": 1_741_079_722_000,
    }
    fields.update(changes)
    return RawRecord(**fields)  # type: ignore[arg-type]


def with_header(headers: Sequence[Header], name: str, value: bytes | None) -> list[Header]:
    return [(k, value if k == name else v) for k, v in headers]


def without_header(headers: Sequence[Header], name: str) -> list[Header]:
    return [(k, v) for k, v in headers if k != name]


@pytest.fixture
def message(request_submitted: RequestSubmittedV1) -> OutgoingMessage:
    return InMemoryPublisher("/cairn/gateway").build(request_submitted)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- handled ---------------------------------------------------------------------------------------


async def test_a_valid_record_reaches_its_handler_with_its_origin(
    setup: Setup, message: OutgoingMessage, request_submitted: RequestSubmittedV1
) -> None:
    outcome = await setup.dispatcher.dispatch(record_of(message, offset=17))
    assert outcome is Outcome.HANDLED
    assert len(setup.deps.calls) == 1
    event, meta = setup.deps.calls[0]
    assert event == request_submitted
    assert meta.id == message.meta.id
    assert meta.origin == Origin(TOPIC, 0, 17, b"req-7f3c2a9e", 1_741_079_722_000)
    assert setup.publisher.messages == []


async def test_an_avro_record_is_decoded_as_avro(setup: Setup, request_submitted: RequestSubmittedV1) -> None:
    avro = InMemoryPublisher(content_type=CONTENT_TYPE_AVRO).build(request_submitted)
    assert await setup.dispatcher.dispatch(record_of(avro)) is Outcome.HANDLED
    assert setup.deps.calls[0][0] == request_submitted


async def test_a_redelivered_record_makes_the_handler_publish_the_same_event(
    setup: Setup, message: OutgoingMessage
) -> None:
    setup.deps.publisher = InMemoryPublisher("/cairn/prompt-store")
    await setup.dispatcher.dispatch(record_of(message, offset=3))
    await setup.dispatcher.dispatch(record_of(message, offset=3))
    first, second = setup.deps.publisher.messages
    assert first.meta.id == second.meta.id == derive_event_id(message.meta.id, PromptRenderedV1.event_type)
    assert first.meta.causation_id == message.meta.id
    assert first.meta.correlation_id == "req-7f3c2a9e"


async def test_ids_are_bound_to_log_lines_only_inside_the_handler(
    setup: Setup, message: OutgoingMessage
) -> None:
    await setup.dispatcher.dispatch(record_of(message))
    bound = setup.deps.logged_context[0]
    assert bound["event_id"] == message.meta.id
    assert bound["request_id"] == "req-7f3c2a9e"
    assert bound["correlation_id"] == "req-7f3c2a9e"
    assert bound["event_type"] == "cairn.request.submitted.v1"
    assert "event_id" not in structlog.contextvars.get_contextvars()


async def test_handled_records_are_counted(setup: Setup, message: OutgoingMessage) -> None:
    labels = {
        "service": "dispatch-test",
        "topic": TOPIC,
        "event_type": "cairn.request.submitted.v1",
        "outcome": "handled",
    }
    before = counter("cairn_events_consumed_total", **labels)
    seconds_before = counter(
        "cairn_handler_duration_seconds_count",
        service="dispatch-test",
        event_type="cairn.request.submitted.v1",
    )
    await setup.dispatcher.dispatch(record_of(message))
    assert counter("cairn_events_consumed_total", **labels) == before + 1
    assert (
        counter(
            "cairn_handler_duration_seconds_count",
            service="dispatch-test",
            event_type="cairn.request.submitted.v1",
        )
        == seconds_before + 1
    )


# --- skipped ---------------------------------------------------------------------------------------


async def test_a_type_the_service_does_not_handle_is_skipped_without_a_dead_letter(
    setup: Setup, prompt_rendered: PromptRenderedV1
) -> None:
    other = InMemoryPublisher().build(prompt_rendered)
    labels = {
        "service": "dispatch-test",
        "topic": "cairn.prompts",
        "event_type": "cairn.prompt.rendered.v1",
        "outcome": "skipped",
    }
    before = counter("cairn_events_consumed_total", **labels)
    assert await setup.dispatcher.dispatch(record_of(other)) is Outcome.SKIPPED
    assert setup.deps.calls == []
    assert setup.publisher.messages == []
    assert counter("cairn_events_consumed_total", **labels) == before + 1


async def test_an_unhandled_type_is_skipped_before_its_payload_is_read(
    setup: Setup, prompt_rendered: PromptRenderedV1
) -> None:
    other = InMemoryPublisher().build(prompt_rendered)
    assert await setup.dispatcher.dispatch(record_of(other, value=b"not json")) is Outcome.SKIPPED
    assert setup.publisher.messages == []


# --- dead letters ----------------------------------------------------------------------------------


async def test_missing_headers_are_dead_lettered_naming_them(setup: Setup, message: OutgoingMessage) -> None:
    record = record_of(message, offset=5, headers=without_header(message.headers, "ce_id"))
    assert await setup.dispatcher.dispatch(record) is Outcome.DEADLETTERED
    [(meta, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.MISSING_HEADERS
    assert dead.reason == "missing CloudEvents header(s): ce_id"
    assert setup.deps.calls == []
    assert meta.type == "cairn.deadletter.recorded.v1"
    assert meta.correlation_id == "req-7f3c2a9e"  # still joins its request's trail


async def test_a_record_without_any_headers_is_dead_lettered(setup: Setup, message: OutgoingMessage) -> None:
    assert await setup.dispatcher.dispatch(record_of(message, headers=[])) is Outcome.DEADLETTERED
    [(meta, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.MISSING_HEADERS
    assert dead.reason == "missing CloudEvents header(s): ce_specversion, ce_id, ce_source, ce_type"
    assert dead.original_headers == []
    assert meta.correlation_id == meta.id


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("ce_specversion", b"0.3", "unsupported ce_specversion '0.3', expected 1.0"),
        ("ce_time", b"soon", "ce_time 'soon' is not an RFC 3339 timestamp"),
        ("ce_type", b"\xc3\x28", "header 'ce_type' is not UTF-8"),
    ],
)
async def test_a_broken_envelope_is_dead_lettered_as_missing_headers(
    setup: Setup, message: OutgoingMessage, name: str, value: bytes, reason: str
) -> None:
    record = record_of(message, headers=with_header(message.headers, name, value))
    assert await setup.dispatcher.dispatch(record) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert (dead.error_kind, dead.reason) == (DeadLetterKind.MISSING_HEADERS, reason)


async def test_an_unknown_type_is_dead_lettered(setup: Setup, message: OutgoingMessage) -> None:
    record = record_of(message, headers=with_header(message.headers, "ce_type", b"cairn.order.placed.v1"))
    assert await setup.dispatcher.dispatch(record) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.UNKNOWN_TYPE
    assert dead.reason == "unknown event type 'cairn.order.placed.v1': not in the schema registry"


async def test_a_value_that_is_not_json_is_dead_lettered(setup: Setup, message: OutgoingMessage) -> None:
    assert await setup.dispatcher.dispatch(record_of(message, value=b"{not json")) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.NOT_JSON
    assert dead.reason.startswith("not UTF-8 JSON: ")
    assert setup.deps.calls == []


async def test_a_null_value_is_dead_lettered_as_not_json(setup: Setup, message: OutgoingMessage) -> None:
    assert await setup.dispatcher.dispatch(record_of(message, value=None)) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.NOT_JSON
    assert dead.original_value_b64 == ""


async def test_a_schema_invalid_payload_is_dead_lettered_with_a_readable_reason(
    setup: Setup, message: OutgoingMessage
) -> None:
    payload = json.loads(message.value)
    del payload["prompt"]
    payload["tenant"] = 7
    record = record_of(message, value=json.dumps(payload).encode())
    assert await setup.dispatcher.dispatch(record) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.SCHEMA_INVALID
    assert dead.reason == (
        "2 validation errors for cairn.request.submitted.v1: "
        "tenant: Input should be a valid string; prompt: Field required"
    )


async def test_a_json_array_is_schema_invalid(setup: Setup, message: OutgoingMessage) -> None:
    assert await setup.dispatcher.dispatch(record_of(message, value=b"[1, 2]")) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert (dead.error_kind, dead.reason) == (DeadLetterKind.SCHEMA_INVALID, "payload is not a JSON object")


async def test_an_unsupported_content_type_is_dead_lettered(setup: Setup, message: OutgoingMessage) -> None:
    record = record_of(message, headers=with_header(message.headers, "content-type", b"text/plain"))
    assert await setup.dispatcher.dispatch(record) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.UNSUPPORTED_CONTENT_TYPE
    assert "'text/plain'" in dead.reason


async def test_a_dead_letter_keeps_the_original_bytes_and_where_they_came_from(
    setup: Setup, message: OutgoingMessage
) -> None:
    headers = [*message.headers, ("x-null", None), ("x-bin", b"\x00\xff")]
    record = RawRecord(TOPIC, 2, 41, b"\x00garbage\xff", key=b"k\xff", headers=headers)
    assert await setup.dispatcher.dispatch(record) is Outcome.DEADLETTERED
    [(meta, dead)] = setup.dead_letters()
    assert dead.origin_topic == TOPIC
    assert (dead.origin_partition, dead.origin_offset) == (2, 41)
    assert dead.consumer_group == GROUP
    assert base64.b64decode(dead.original_value_b64) == b"\x00garbage\xff"
    assert dead.original_value() == b"\x00garbage\xff"
    assert dead.original_key() == b"k\xff"
    assert [(h.key, base64.b64decode(h.value_b64)) for h in dead.original_headers] == [
        *message.headers,
        ("x-null", b""),
        ("x-bin", b"\x00\xff"),
    ]
    published = setup.publisher.messages[0]
    assert published.topic == "cairn.deadletter"
    assert published.key == TOPIC.encode()
    assert meta.source == "/cairn/dispatch-test"
    assert meta.correlation_id == "req-7f3c2a9e"


async def test_a_record_without_key_has_no_key_in_its_dead_letter(
    setup: Setup, message: OutgoingMessage
) -> None:
    await setup.dispatcher.dispatch(record_of(message, key=None, value=b"x"))
    [(_, dead)] = setup.dead_letters()
    assert dead.original_key_b64 is None


async def test_the_same_broken_record_twice_gives_one_dead_letter_id(
    setup: Setup, message: OutgoingMessage
) -> None:
    record = record_of(message, offset=9, value=b"broken")
    await setup.dispatcher.dispatch(record)
    await setup.dispatcher.dispatch(record)
    first, second = (meta for meta, _ in setup.dead_letters())
    assert first.id == second.id == derive_event_id(f"{TOPIC}/0/9", "cairn.deadletter.recorded.v1", GROUP)
    other_group = Dispatcher(make_router(), Recorder(), setup.publisher, group_id="other", retry_backoff_s=0)
    await other_group.dispatch(record)
    assert setup.publisher.messages[-1].meta.id != first.id


async def test_dead_letters_are_counted_by_kind(setup: Setup, message: OutgoingMessage) -> None:
    before = counter("cairn_deadletters_total", service="dispatch-test", kind="not_json")
    consumed = {
        "service": "dispatch-test",
        "topic": TOPIC,
        "event_type": "cairn.request.submitted.v1",
        "outcome": "deadlettered",
    }
    consumed_before = counter("cairn_events_consumed_total", **consumed)
    await setup.dispatcher.dispatch(record_of(message, value=b"{"))
    assert counter("cairn_deadletters_total", service="dispatch-test", kind="not_json") == before + 1
    assert counter("cairn_events_consumed_total", **consumed) == consumed_before + 1


# --- handler failures ------------------------------------------------------------------------------


async def test_a_failing_handler_is_retried_then_dead_lettered(
    setup: Setup, message: OutgoingMessage
) -> None:
    setup.deps.always = ValueError("boom")
    assert await setup.dispatcher.dispatch(record_of(message)) is Outcome.DEADLETTERED
    assert len(setup.deps.calls) == 3
    [(_, dead)] = setup.dead_letters()
    assert dead.error_kind is DeadLetterKind.HANDLER_FAILED
    assert dead.reason == "handler failed after 3 attempts: ValueError('boom')"


async def test_a_handler_that_recovers_is_handled_without_a_dead_letter(
    setup: Setup, message: OutgoingMessage
) -> None:
    setup.deps.failures = [ValueError("once"), KeyError("twice")]
    assert await setup.dispatcher.dispatch(record_of(message)) is Outcome.HANDLED
    assert len(setup.deps.calls) == 3
    assert setup.publisher.messages == []


async def test_attempts_back_off_linearly(message: OutgoingMessage, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    deps = Recorder(always=RuntimeError("down"))
    dispatcher = Dispatcher(
        make_router(), deps, InMemoryPublisher(), group_id=GROUP, max_attempts=4, retry_backoff_s=0.5
    )
    monkeypatch.setattr("cairn_bus.dispatcher.asyncio.sleep", fake_sleep)
    assert await dispatcher.dispatch(record_of(message)) is Outcome.DEADLETTERED
    assert sleeps == [0.5, 1.0, 1.5]
    assert len(deps.calls) == 4


async def test_one_attempt_means_no_retry(message: OutgoingMessage) -> None:
    deps = Recorder(always=RuntimeError("down"))
    publisher = InMemoryPublisher()
    dispatcher = Dispatcher(make_router(), deps, publisher, group_id=GROUP, max_attempts=1, retry_backoff_s=0)
    assert await dispatcher.dispatch(record_of(message)) is Outcome.DEADLETTERED
    assert len(deps.calls) == 1
    assert publisher.messages[0].event.reason == "handler failed after 1 attempts: RuntimeError('down')"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "error",
    [TransientError("db down"), OSError("disk"), ConnectionError("peer"), TimeoutError()],
    ids=["TransientError", "OSError", "ConnectionError", "TimeoutError"],
)
async def test_a_transient_failure_is_raised_after_the_attempts_and_never_dead_lettered(
    setup: Setup, message: OutgoingMessage, error: Exception
) -> None:
    setup.deps.always = error
    with pytest.raises(type(error)) as info:
        await setup.dispatcher.dispatch(record_of(message))
    assert info.value is error
    assert len(setup.deps.calls) == 3
    assert setup.publisher.messages == []


async def test_only_the_last_failure_decides(setup: Setup, message: OutgoingMessage) -> None:
    setup.deps.failures = [TransientError("db down"), TransientError("db down")]

    async def then_fail(event: Event, meta: EventMeta, deps: Recorder) -> None:
        await on_request(event, meta, deps)
        raise ValueError("bad data")

    router: EventRouter[Recorder] = EventRouter("dispatch-test")
    router.handler(RequestSubmittedV1)(then_fail)
    dispatcher = Dispatcher(router, setup.deps, setup.publisher, group_id=GROUP, retry_backoff_s=0)
    assert await dispatcher.dispatch(record_of(message)) is Outcome.DEADLETTERED
    [(_, dead)] = setup.dead_letters()
    assert dead.reason == "handler failed after 3 attempts: ValueError('bad data')"


# --- tracing ---------------------------------------------------------------------------------------


async def test_the_handler_runs_in_a_consumer_span_under_the_producers_trace(
    span_exporter: InMemorySpanExporter, message: OutgoingMessage, request_submitted: RequestSubmittedV1
) -> None:
    traced = InMemoryPublisher("/cairn/gateway").build(request_submitted)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = [*without_header(traced.headers, "traceparent"), ("traceparent", traceparent.encode())]
    deps = Recorder()
    dispatcher = Dispatcher(make_router(), deps, InMemoryPublisher(), group_id=GROUP, retry_backoff_s=0)
    assert await dispatcher.dispatch(record_of(traced, offset=12, headers=headers)) is Outcome.HANDLED
    [span] = span_exporter.get_finished_spans()
    assert span.name == "cairn.requests process"
    assert span.kind is SpanKind.CONSUMER
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.parent is not None
    assert span.parent.span_id == 0xB7AD6B7169203331
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.destination.name": "cairn.requests",
        "messaging.kafka.offset": 12,
        "messaging.message.id": traced.meta.id,
        "cloudevents.event_type": "cairn.request.submitted.v1",
    }
    assert span.resource.attributes["service.name"] == "cairn-bus-test"


async def test_each_failed_attempt_is_an_error_span(
    span_exporter: InMemorySpanExporter, message: OutgoingMessage
) -> None:
    deps = Recorder(always=ValueError("boom"))
    dispatcher = Dispatcher(make_router(), deps, InMemoryPublisher(), group_id=GROUP, retry_backoff_s=0)
    await dispatcher.dispatch(record_of(message))
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 3
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "boom"
        assert [e.name for e in span.events] == ["exception"]


# --- properties ------------------------------------------------------------------------------------

_DISPATCH_KINDS = {DeadLetterKind.NOT_JSON, DeadLetterKind.NOT_AVRO, DeadLetterKind.SCHEMA_INVALID}


@given(
    value=st.one_of(
        st.none(),
        st.binary(max_size=200),
        st.text(max_size=100).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    content_type=st.sampled_from(["application/json", CONTENT_TYPE_AVRO, "application/json; charset=utf-8"]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_value_with_valid_headers_is_handled_or_dead_lettered(
    message: OutgoingMessage, value: bytes | None, content_type: str
) -> None:
    deps = Recorder()
    publisher = InMemoryPublisher()
    dispatcher = Dispatcher(make_router(), deps, publisher, group_id=GROUP, retry_backoff_s=0)
    headers = with_header(message.headers, "content-type", content_type.encode())
    outcome = await dispatcher.dispatch(record_of(message, value=value, headers=headers))
    if outcome is Outcome.HANDLED:
        assert len(deps.calls) == 1
        assert publisher.messages == []
    else:
        assert outcome is Outcome.DEADLETTERED
        assert deps.calls == []
        [dead] = publisher.messages
        assert isinstance(dead.event, DeadLetterRecordedV1)
        assert dead.event.error_kind in _DISPATCH_KINDS
        assert dead.event.original_value() == (value or b"")


@given(
    valid=st.sampled_from(["encoded", "avro"]),
    cut=st.integers(min_value=0, max_value=400),
    flip=st.integers(min_value=0, max_value=255),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_a_corrupted_valid_value_is_handled_or_dead_lettered(
    request_submitted: RequestSubmittedV1, valid: str, cut: int, flip: int
) -> None:
    content_type = CONTENT_TYPE_AVRO if valid == "avro" else "application/json"
    built = InMemoryPublisher(content_type=content_type).build(request_submitted)
    value = bytearray(built.value)
    if value:
        value[cut % len(value)] ^= flip
    deps = Recorder()
    publisher = InMemoryPublisher()
    dispatcher = Dispatcher(make_router(), deps, publisher, group_id=GROUP, retry_backoff_s=0)
    outcome = await dispatcher.dispatch(record_of(built, value=bytes(value)))
    assert outcome in {Outcome.HANDLED, Outcome.DEADLETTERED}
    assert len(deps.calls) + len(publisher.messages) == 1


_header_names = st.sampled_from(
    ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type", "ce_subject", "x-other"]
)


@given(
    headers=st.lists(
        st.tuples(
            _header_names,
            st.one_of(
                st.none(),
                st.binary(max_size=20),
                st.sampled_from(
                    [b"1.0", b"cairn.request.submitted.v1", b"cairn.prompt.rendered.v1", b"application/avro"]
                ),
            ),
        ),
        max_size=10,
    ),
    value=st.binary(max_size=50),
)
@settings(max_examples=300, deadline=None)
async def test_any_headers_and_value_never_raise(
    headers: list[tuple[str, bytes | None]], value: bytes
) -> None:
    deps = Recorder()
    publisher = InMemoryPublisher()
    dispatcher = Dispatcher(make_router(), deps, publisher, group_id=GROUP, retry_backoff_s=0)
    outcome = await dispatcher.dispatch(RawRecord(TOPIC, 0, 1, value, headers=headers))
    assert outcome in set(Outcome)
    if outcome is Outcome.DEADLETTERED:
        assert len(publisher.messages) == 1
    else:
        assert publisher.messages == []
