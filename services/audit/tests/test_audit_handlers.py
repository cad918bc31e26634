"""The audit handler through the service's real router and dispatcher, with in-memory fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from cairn_audit.adapters.memory import InMemoryAuditStore
from cairn_audit.app import router
from cairn_audit.bootstrap import Deps, build
from cairn_audit.domain.records import GENESIS_HASH, AuditRecord
from cairn_audit.domain.trail import causal_order
from cairn_audit.handlers import flush, on_any_event, record_of
from cairn_audit.settings import Settings
from cairn_bus import Dispatcher, EventMeta, InMemoryPublisher, Origin, Outcome, RawRecord
from cairn_bus.publisher import OutgoingMessage
from cairn_events import (
    EVENT_TYPES,
    AdminActionRecordedV1,
    DeadLetterKind,
    DeadLetterRecordedV1,
    Event,
    PromptRenderedV1,
    RequestSubmittedV1,
)
from cairn_testing import schema_examples

REQUEST = "req-01J9Z6T4K8Q2V7W3X5Y1A0B2C3"


def example(event_type: str, name: str | None = None) -> Event:
    for found in schema_examples(event_type):
        if name is None or found.path.name == name:
            return found.event()
    raise LookupError(event_type)


def as_record(message: OutgoingMessage, offset: int) -> RawRecord:
    return RawRecord(
        message.topic, 0, offset, message.value, message.key, list(message.headers), 1_741_079_722_000
    )


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    async with build(Settings(), InMemoryPublisher("/cairn/audit"), store=InMemoryAuditStore()) as built:
        yield built


@pytest.fixture
def dispatcher(deps: Deps) -> Dispatcher[Deps]:
    return Dispatcher(router, deps, deps.publisher, group_id="cairn-audit", retry_backoff_s=0)


def store_of(deps: Deps) -> InMemoryAuditStore:
    assert isinstance(deps.store, InMemoryAuditStore)
    return deps.store


# --- record_of -------------------------------------------------------------------------------------


def test_record_of_keeps_envelope_payload_and_origin() -> None:
    event = example(RequestSubmittedV1.event_type, "v1-minimal.json")
    message = InMemoryPublisher("/cairn/gateway").build(event)
    meta = message.meta.with_origin(Origin("cairn.requests", 2, 40, b"req-7f3c2a9e"))
    record = record_of(event, meta)
    assert record.event_id == meta.id
    assert record.event_type == "cairn.request.submitted.v1"
    assert record.source == "/cairn/gateway"
    assert record.event_time == meta.time
    assert (record.topic, record.partition, record.offset, record.key) == (
        "cairn.requests",
        2,
        40,
        "req-7f3c2a9e",
    )
    assert record.payload == json.loads(message.value)
    assert record.headers == {k: v.decode() for k, v in message.headers}
    assert record.content_type == "application/json"
    assert (record.subject, record.correlation_id, record.causation_id) == (
        "req-7f3c2a9e",
        "req-7f3c2a9e",
        None,
    )
    assert record.tenant == "default"
    assert (record.seq, record.hash, record.prev_hash, record.recorded_at) == (None, None, None, None)


def test_record_of_a_caused_replayed_event() -> None:
    event = example(PromptRenderedV1.event_type)
    cause = EventMeta(
        id="cause-1",
        type="cairn.request.submitted.v1",
        source="/cairn/gateway",
        time=InMemoryPublisher().build(event).meta.time,
        correlation_id=REQUEST,
        replay_id="replay-7",
    )
    meta = InMemoryPublisher("/cairn/prompt-store").build(event, cause=cause).meta
    record = record_of(event, meta)
    assert (record.causation_id, record.correlation_id, record.replay_id) == ("cause-1", REQUEST, "replay-7")
    assert record.tenant == "acme-support"


def test_record_of_without_origin_uses_the_events_topic() -> None:
    event = example(RequestSubmittedV1.event_type, "v1-minimal.json")
    record = record_of(event, InMemoryPublisher().build(event).meta)
    assert (record.topic, record.partition, record.offset, record.key) == ("cairn.requests", -1, -1, None)


def test_a_key_that_is_not_utf8_is_kept_escaped() -> None:
    event = example(RequestSubmittedV1.event_type, "v1-minimal.json")
    meta = InMemoryPublisher().build(event).meta.with_origin(Origin("cairn.requests", 0, 1, b"k\xff"))
    assert record_of(event, meta).key == "k\\xff"


# --- on_any_event ----------------------------------------------------------------------------------


async def test_the_same_event_handled_twice_is_stored_once(deps: Deps) -> None:
    event = example(RequestSubmittedV1.event_type, "v1-minimal.json")
    meta = InMemoryPublisher().build(event).meta.with_origin(Origin("cairn.requests", 0, 5))
    await on_any_event(event, meta, deps)
    await on_any_event(event, meta.with_origin(Origin("cairn.requests", 0, 6)), deps)
    assert await deps.store.count() == 0, "buffered until the batch ends"
    await flush(deps)
    await flush(deps)  # nothing left to store
    assert await deps.store.count() == 1
    stored = await deps.store.get(meta.id)
    assert stored is not None
    assert stored.offset == 5
    assert stored.prev_hash == GENESIS_HASH
    assert await deps.store.verify() == []


# --- the service's wiring --------------------------------------------------------------------------


def test_the_audit_router_consumes_every_event_type_and_publishes_only_dead_letters() -> None:
    assert router.consumed_types == frozenset(EVENT_TYPES)
    # every topic of the registry, and the shadow topic that carries replayed and shadow answers
    assert router.topics == sorted({cls.topic for cls in EVENT_TYPES.values()} | {"cairn.responses.shadow"})
    assert ("cairn.responses.shadow", "cairn.response.completed.v1") in router.consumes()
    # besides dead letters, only the creation of the bootstrap admin key (CAIRN_AUTH_BOOTSTRAP_KEY_FILE)
    assert router.published_types == {DeadLetterRecordedV1.event_type, AdminActionRecordedV1.event_type}
    for event_type in EVENT_TYPES:
        assert router.handler_for(event_type) is on_any_event


async def test_every_schema_example_is_stored_once_even_when_redelivered(
    deps: Deps, dispatcher: Dispatcher[Deps]
) -> None:
    gateway = InMemoryPublisher("/cairn/upstream")
    messages = [gateway.build(found.event()) for found in schema_examples()]
    assert len(messages) >= len(EVENT_TYPES)
    for offset, message in enumerate(messages):
        assert await dispatcher.dispatch(as_record(message, offset)) is Outcome.HANDLED
    await dispatcher.end_batch()
    for offset, message in enumerate(messages):  # the consumer restarts before committing
        assert await dispatcher.dispatch(as_record(message, offset)) is Outcome.HANDLED
    await dispatcher.end_batch()
    store = store_of(deps)
    assert await store.count() == len(messages)
    assert [r.event_id for r in store.records] == [m.meta.id for m in messages]
    assert {r.event_type for r in store.records} == set(EVENT_TYPES)
    assert [r.seq for r in store.records] == list(range(1, len(messages) + 1))
    assert await store.verify() == []
    assert deps.publisher.messages == []  # type: ignore[attr-defined]


async def test_a_request_trail_reads_back_in_causal_order(deps: Deps, dispatcher: Dispatcher[Deps]) -> None:
    services = InMemoryPublisher("/cairn/any")
    request = services.build(example(RequestSubmittedV1.event_type, "v1-full.json"))
    rendered = services.build(example(PromptRenderedV1.event_type), cause=request.meta)
    stray = services.build(example(RequestSubmittedV1.event_type, "v1-minimal.json"))
    # the audit service may read topics in any order
    for offset, message in enumerate([rendered, stray, request]):
        assert await dispatcher.dispatch(as_record(message, offset)) is Outcome.HANDLED
    await dispatcher.end_batch()
    trail = await deps.store.trail(REQUEST)
    assert [r.event_id for r in trail] == [rendered.meta.id, request.meta.id]
    assert [n.record.event_id for n in causal_order(trail)] == [request.meta.id, rendered.meta.id]


async def test_a_broken_message_is_dead_lettered_and_not_stored(
    deps: Deps, dispatcher: Dispatcher[Deps]
) -> None:
    message = InMemoryPublisher().build(example(RequestSubmittedV1.event_type, "v1-minimal.json"))
    broken = RawRecord(message.topic, 0, 3, b'{"request_id": 1}', message.key, list(message.headers))
    assert await dispatcher.dispatch(broken) is Outcome.DEADLETTERED
    await dispatcher.end_batch()
    assert await deps.store.count() == 0
    [dead] = deps.publisher.messages  # type: ignore[attr-defined]
    assert isinstance(dead.event, DeadLetterRecordedV1)
    assert dead.event.error_kind is DeadLetterKind.SCHEMA_INVALID
    assert dead.event.consumer_group == "cairn-audit"
    assert dead.meta.source == "/cairn/audit"
    assert dead.meta.correlation_id == "req-7f3c2a9e"
    # the dead letter is itself an event the audit service records, in the request's trail
    assert await dispatcher.dispatch(as_record(dead, 0)) is Outcome.HANDLED
    await dispatcher.end_batch()
    [stored] = await deps.store.trail("req-7f3c2a9e")
    assert stored.event_type == "cairn.deadletter.recorded.v1"
    assert stored.topic == "cairn.deadletter"


async def test_a_row_the_store_rejects_is_dead_lettered_and_does_not_block_the_batch(deps: Deps) -> None:
    good = [
        example(RequestSubmittedV1.event_type, "v1-minimal.json"),
        example(RequestSubmittedV1.event_type, "v1-full.json"),
    ]
    gateway = InMemoryPublisher("/cairn/upstream")
    metas = [gateway.build(e).meta.with_origin(Origin("cairn.requests", 1, i)) for i, e in enumerate(good)]
    inner = deps.store

    class RejectsOne:
        """A store that cannot hold one particular event (like a NUL byte in jsonb)."""

        def __getattr__(self, name: str) -> object:
            return getattr(inner, name)

        async def append(self, records: list[AuditRecord]) -> int:
            if any(r.event_id == metas[0].id for r in records):
                raise ValueError("unsupported Unicode escape sequence")
            return await inner.append(records)

    deps.store = RejectsOne()  # type: ignore[assignment]
    for event, meta in zip(good, metas, strict=True):
        await on_any_event(event, meta, deps)
    await flush(deps)
    assert await inner.get(metas[1].id) is not None
    assert await inner.get(metas[0].id) is None
    [dead] = deps.publisher.messages  # type: ignore[attr-defined]
    assert isinstance(dead.event, DeadLetterRecordedV1)
    assert dead.event.error_kind is DeadLetterKind.HANDLER_FAILED
    assert (dead.event.origin_topic, dead.event.origin_partition, dead.event.origin_offset) == (
        "cairn.requests",
        1,
        0,
    )
    assert "unsupported Unicode" in dead.event.reason


async def test_a_transient_store_failure_propagates_so_the_batch_is_consumed_again(deps: Deps) -> None:
    event = example(RequestSubmittedV1.event_type, "v1-minimal.json")
    meta = InMemoryPublisher().build(event).meta.with_origin(Origin("cairn.requests", 0, 1))

    class Down:
        async def append(self, records: list[AuditRecord]) -> int:
            raise ConnectionRefusedError("database down")

    deps.store = Down()  # type: ignore[assignment]
    await on_any_event(event, meta, deps)
    with pytest.raises(ConnectionRefusedError):
        await flush(deps)
    assert deps.pending == []
    assert deps.publisher.messages == []  # type: ignore[attr-defined]
