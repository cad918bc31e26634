"""Answering a dead-lettered request: what `salvage_request` reads, what `answer_dead_lettered` publishes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from cairn_bus import (
    Dispatcher,
    EventMeta,
    EventRouter,
    InMemoryPublisher,
    Origin,
    RawRecord,
    derive_event_id,
    meta_from_headers,
)
from cairn_bus.salvage import DEFAULT_TENANT, SalvagedRequest, salvage_request
from cairn_events import (
    DeadLetterKind,
    DeadLetterRecordedV1,
    Event,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)

ANSWERED_AT = datetime(2025, 3, 4, 9, 15, 23, tzinfo=UTC)


def record_of(event: Event, offset: int = 42, **changes: Any) -> RawRecord:
    """The record a publisher would send for `event`, as consumed at `offset` of partition 0;
    `changes` replace its value, key or headers."""
    message = InMemoryPublisher("/cairn/upstream").build(event)
    fields = {"value": message.value, "key": message.key, "headers": list(message.headers), **changes}
    return RawRecord(message.topic, 0, offset, timestamp_ms=1_741_079_722_000, **fields)


def headers_of(record: RawRecord, **replaced: bytes | None) -> list[tuple[str, bytes | None]]:
    """The record's headers with some replaced (None: removed)."""
    kept = [(k, v) for k, v in record.headers if k not in replaced]
    return kept + [(k, v) for k, v in replaced.items() if v is not None]


def bare(
    topic: str = "cairn.requests", value: bytes | None = b"", key: bytes | None = None, **headers: bytes
) -> RawRecord:
    """A record without a readable envelope: only the given headers."""
    return RawRecord(topic, 3, 7, value, key=key, headers=list(headers.items()))


# --- salvage_request: the request id


def test_everything_readable_gives_id_tenant_payload_cause_and_origin(
    request_submitted: RequestSubmittedV1,
) -> None:
    record = record_of(request_submitted)
    found = salvage_request(record)
    assert found is not None
    assert found.request_id == "req-7f3c2a9e"
    assert found.tenant == request_submitted.tenant == "default"
    assert found.payload == json.loads(record.value or b"")
    assert found.origin == "cairn.requests/0/42"
    origin = Origin(record.topic, record.partition, record.offset, record.key, record.timestamp_ms)
    assert found.cause == meta_from_headers(record.headers, origin)
    assert found.answer_id(ResponseCompletedV1.event_type) is None  # derived from the cause instead


@pytest.mark.parametrize(
    "request_id",
    [
        "req 1",  # a character outside the pattern
        "x" * 129,  # too long
        "req-1\n",  # a pattern anchored with `$` would accept the trailing newline with `match`
        "",
        5,
        None,
        ["req-1"],
    ],
)
def test_a_payload_id_that_is_no_identifier_gives_way_to_the_subject(
    request_submitted: RequestSubmittedV1, request_id: object
) -> None:
    payload = {**request_submitted.model_dump(mode="json"), "request_id": request_id}
    record = record_of(request_submitted, value=json.dumps(payload).encode())
    record = replace(record, headers=headers_of(record, ce_subject=b"req-from-subject"))
    found = salvage_request(record)
    assert found is not None
    assert found.request_id == "req-from-subject"
    assert not found.named_in_payload


def test_the_key_is_the_last_resort_and_must_match_in_full(request_submitted: RequestSubmittedV1) -> None:
    record = bare(value=b"{", key=b"req-from-key", ce_subject=b"not an id")
    found = salvage_request(record)
    assert found is not None
    assert found.request_id == "req-from-key"
    assert salvage_request(bare(value=b"{", key=b"req-from-key\n")) is None
    assert salvage_request(bare(value=b"{", key=b"\xff\xfe")) is None


def test_the_payload_id_wins_over_subject_and_key() -> None:
    record = bare(value=b'{"request_id": "req-payload"}', key=b"req-key", ce_subject=b"req-subject")
    found = salvage_request(record)
    assert found is not None
    assert found.request_id == "req-payload"
    assert found.named_in_payload


def test_nothing_that_names_a_request_gives_none() -> None:
    assert salvage_request(bare(value=b"\x00\x01", key=None)) is None
    assert salvage_request(bare(value=b'{"request_id": "a b"}', key=b"a b", ce_subject=b"")) is None


# --- salvage_request: tenant, payload, cause


def test_the_tenant_is_the_payload_s_then_the_header_s_then_default(
    prompt_rendered: PromptRenderedV1,
) -> None:
    from_payload = salvage_request(record_of(prompt_rendered))
    assert from_payload is not None
    assert from_payload.tenant == prompt_rendered.tenant == "acme-support"

    payload = {**prompt_rendered.model_dump(mode="json"), "tenant": "   "}
    record = record_of(prompt_rendered, value=json.dumps(payload).encode())
    from_header = salvage_request(record)
    assert from_header is not None
    assert from_header.tenant == "acme-support"  # the ce_tenant header the publisher set

    without = replace(record, headers=headers_of(record, ce_tenant=None))
    defaulted = salvage_request(without)
    assert defaulted is not None
    assert defaulted.tenant == DEFAULT_TENANT == "default"


@pytest.mark.parametrize("tenant", [7, None, "", ["acme"]])
def test_a_payload_tenant_that_is_no_text_gives_way_to_the_header(tenant: object) -> None:
    found = salvage_request(
        bare(value=json.dumps({"request_id": "r-1", "tenant": tenant}).encode(), ce_tenant=b"t-h")
    )
    assert found is not None
    assert found.tenant == "t-h"


@pytest.mark.parametrize("value", [None, b"", b"{", b"\xff\xfe{}", b"[1, 2]", b'"req-1"', b"null", b"NaN"])
def test_a_value_that_is_no_json_object_gives_an_empty_payload(value: bytes | None) -> None:
    found = salvage_request(bare(value=value, ce_subject=b"req-1", ce_tenant=b"acme"))
    headers = {"ce_subject": "req-1", "ce_tenant": "acme"}
    assert found == SalvagedRequest("req-1", "acme", "cairn.requests/3/7", {}, None, headers)


def test_without_a_readable_envelope_the_answer_id_derives_from_the_origin() -> None:
    found = salvage_request(bare(value=b'{"request_id": "req-1"}'))
    assert found is not None
    assert found.cause is None
    assert found.answer_id("cairn.response.completed.v1", "safety") == derive_event_id(
        "cairn.requests/3/7", "cairn.response.completed.v1", "safety"
    )
    assert found.answer_id("cairn.response.completed.v1") != found.answer_id(
        "cairn.response.completed.v1", "safety"
    )


def test_deeply_nested_json_is_unreadable_not_an_error() -> None:
    found = salvage_request(bare(value=b"[" * 100_000, ce_subject=b"req-1"))
    assert found is not None
    assert found.payload == {}


# --- EventRouter.answer_dead_lettered


@dataclass
class Deps:
    publisher: InMemoryPublisher = field(default_factory=lambda: InMemoryPublisher("/cairn/safety"))
    built: list[tuple[SalvagedRequest, DeadLetterKind, str]] = field(default_factory=list)


def answering_router(answer: bool = True) -> EventRouter[Deps]:
    """The safety service's router, answering a dead-lettered request with a rejection (or not)."""
    router: EventRouter[Deps] = EventRouter("safety")

    @router.handler(RequestSubmittedV1)
    async def on_request_submitted(event: RequestSubmittedV1, meta: EventMeta, deps: Deps) -> None:
        raise AssertionError("not reached: the record is dead-lettered before")

    @router.answer_dead_lettered(RequestSubmittedV1, ResponseCompletedV1)
    def reject(found: SalvagedRequest, kind: DeadLetterKind, reason: str, deps: Deps) -> Event | None:
        deps.built.append((found, kind, reason))
        if not answer:
            return None
        return ResponseCompletedV1(
            request_id=found.request_id,
            tenant=found.tenant,
            status=ResponseStatus.REJECTED,
            reason=f"unreadable request ({kind.value}): {reason}",
            completed_at=ANSWERED_AT,
        )

    return router


async def dead_letter(router: EventRouter[Deps], record: RawRecord, deps: Deps) -> None:
    assert router.dead_letter_hook is not None
    await router.dead_letter_hook(record, DeadLetterKind.SCHEMA_INVALID, "1 validation error", deps)


async def test_the_answer_joins_the_trail_of_a_record_whose_envelope_is_readable(
    request_submitted: RequestSubmittedV1,
) -> None:
    deps, record = Deps(), record_of(request_submitted)
    await dead_letter(answering_router(), record, deps)
    cause = meta_from_headers(record.headers)
    [message] = deps.publisher.messages
    assert message.topic == "cairn.responses"
    assert message.meta.id == derive_event_id(cause.id, ResponseCompletedV1.event_type)
    assert message.meta.causation_id == cause.id
    assert message.meta.correlation_id == (cause.correlation_id or cause.id)
    assert message.event == ResponseCompletedV1(
        request_id="req-7f3c2a9e",
        tenant="default",
        status=ResponseStatus.REJECTED,
        reason="unreadable request (schema_invalid): 1 validation error",
        completed_at=ANSWERED_AT,
    )
    [(found, kind, reason)] = deps.built
    assert (found.request_id, kind, reason) == (
        "req-7f3c2a9e",
        DeadLetterKind.SCHEMA_INVALID,
        "1 validation error",
    )


async def test_without_a_readable_envelope_the_answer_has_a_derived_id_and_the_request_s_trail() -> None:
    deps = Deps()
    record = bare(
        value=b'{"request_id": "req-9", "tenant": "acme"',
        key=b"req-9",
        ce_type=RequestSubmittedV1.event_type.encode(),
    )
    await dead_letter(answering_router(), record, deps)
    [message] = deps.publisher.messages
    assert message.meta.id == derive_event_id("cairn.requests/3/7", ResponseCompletedV1.event_type, "safety")
    assert message.meta.causation_id is None
    assert message.meta.correlation_id == "req-9"
    assert isinstance(message.event, ResponseCompletedV1)
    assert (message.event.request_id, message.event.tenant) == ("req-9", "default")


@pytest.mark.parametrize("readable", [True, False])
async def test_a_redelivered_record_gets_the_same_answer(
    request_submitted: RequestSubmittedV1, readable: bool
) -> None:
    deps, router = Deps(), answering_router()
    record = record_of(request_submitted) if readable else bare(value=b"{", key=b"req-9")
    await dead_letter(router, record, deps)
    await dead_letter(router, record, deps)
    first, second = deps.publisher.messages
    assert first.meta.id == second.meta.id
    assert first.value == second.value


async def test_a_builder_returning_none_publishes_nothing(request_submitted: RequestSubmittedV1) -> None:
    deps = Deps()
    await dead_letter(answering_router(answer=False), record_of(request_submitted), deps)
    assert len(deps.built) == 1
    assert deps.publisher.messages == []


async def test_records_of_another_type_or_topic_or_without_an_id_are_not_answered(
    request_submitted: RequestSubmittedV1, prompt_rendered: PromptRenderedV1
) -> None:
    deps, router = Deps(), answering_router()
    request = record_of(request_submitted)
    for record in (
        replace(request, headers=headers_of(request, ce_type=b"cairn.feedback.submitted.v1")),
        record_of(prompt_rendered),  # another topic
        bare(topic="cairn.prompts", value=b'{"request_id": "req-1"}'),
        bare(value=b"\x00", key=b"not an id"),  # nothing names the request
    ):
        await dead_letter(router, record, deps)
    assert deps.built == []
    assert deps.publisher.messages == []


async def test_the_dispatcher_dead_letters_the_record_then_the_service_answers(
    request_submitted: RequestSubmittedV1,
) -> None:
    deps, router = Deps(), answering_router()
    dead_letters = InMemoryPublisher("/cairn/safety")
    broken = {**request_submitted.model_dump(mode="json"), "prompt": 7}
    record = record_of(request_submitted, value=json.dumps(broken).encode())
    await Dispatcher(router, deps, dead_letters, group_id="cairn-safety").dispatch(record)
    [letter] = dead_letters.events(DeadLetterRecordedV1.event_type)
    assert isinstance(letter, DeadLetterRecordedV1)
    assert letter.error_kind is DeadLetterKind.SCHEMA_INVALID
    [answer] = deps.publisher.events(ResponseCompletedV1.event_type)
    assert isinstance(answer, ResponseCompletedV1)
    assert answer.request_id == "req-7f3c2a9e"
    assert answer.status is ResponseStatus.REJECTED


def test_the_answer_type_is_declared_when_the_builder_is_registered() -> None:
    router = answering_router()
    assert ResponseCompletedV1.event_type in router.published_types


# --- the answer's causation and trace context when the envelope is not the request's own

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def schema_invalid(request: RequestSubmittedV1, **replaced: bytes | None) -> RawRecord:
    """The request's record with a payload that fails its schema, a trace context, and some headers
    replaced (None: removed)."""
    broken = {**request.model_dump(mode="json"), "prompt": 7}
    record = record_of(request, value=json.dumps(broken).encode())
    changes = {"traceparent": TRACEPARENT, "tracestate": b"acme=1", **replaced}
    return replace(record, headers=headers_of(record, **changes))


async def answer_of(record: RawRecord) -> Any:
    deps = Deps()
    outcome = await Dispatcher(answering_router(), deps, InMemoryPublisher(), group_id="g").dispatch(record)
    assert outcome.value == "deadlettered"
    [message] = deps.publisher.messages
    return message


@pytest.mark.parametrize(
    "replaced",
    [
        {},  # the full envelope: the answer joins it
        {"ce_subject": None},  # ce_subject is only recommended
        {"ce_subject": b"req-other"},  # an envelope about another request
        {"ce_source": None},  # an unreadable envelope
        {"ce_time": b"yesterday"},
    ],
)
async def test_the_answer_is_caused_by_the_record_s_ce_id_and_in_its_trace(
    request_submitted: RequestSubmittedV1, replaced: dict[str, bytes | None]
) -> None:
    record = schema_invalid(request_submitted, **replaced)
    ce_id = (dict(record.headers)["ce_id"] or b"").decode()
    message = await answer_of(record)
    assert message.meta.causation_id == ce_id
    assert message.meta.traceparent == TRACEPARENT.decode()
    assert message.meta.tracestate == "acme=1"
    assert message.meta.subject == "req-7f3c2a9e"
    assert message.topic == "cairn.responses"
    if replaced:  # not the request's own envelope: the request's trail, an id fixed by the origin
        assert message.meta.correlation_id == "req-7f3c2a9e"
        assert message.meta.id == derive_event_id(
            "cairn.requests/0/42", ResponseCompletedV1.event_type, "safety"
        )


async def test_a_record_without_ce_id_gets_an_answer_without_causation(
    request_submitted: RequestSubmittedV1,
) -> None:
    message = await answer_of(schema_invalid(request_submitted, ce_id=None))
    assert message.meta.causation_id is None
    assert message.meta.correlation_id == "req-7f3c2a9e"


async def test_the_answer_to_a_replayed_record_goes_to_the_shadow_topic(
    request_submitted: RequestSubmittedV1,
) -> None:
    message = await answer_of(schema_invalid(request_submitted, ce_subject=None, ce_replayid=b"replay-1"))
    assert message.meta.replay_id == "replay-1"
    assert message.topic == "cairn.responses.shadow"
