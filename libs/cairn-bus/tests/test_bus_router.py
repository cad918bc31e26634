"""EventRouter: the handlers and publications a service declares."""

from __future__ import annotations

import pytest

from cairn_bus import EventMeta, EventRouter
from cairn_events import (
    EVENT_TYPES,
    CompletionGeneratedV1,
    DeadLetterRecordedV1,
    Event,
    InputScreenedV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
)


async def on_request(event: Event, meta: EventMeta, deps: None) -> None:
    """A handler for the tests."""


async def on_other(event: Event, meta: EventMeta, deps: None) -> None:
    """Another handler for the tests."""


def test_a_new_router_handles_nothing_and_publishes_dead_letters() -> None:
    router: EventRouter[None] = EventRouter("svc")
    assert router.service == "svc"
    assert router.consumed_types == frozenset()
    assert router.topics == []
    assert router.consumes() == frozenset()
    assert router.published_types == {"cairn.deadletter.recorded.v1"}
    assert router.produces() == {("cairn.deadletter", "cairn.deadletter.recorded.v1")}
    assert router.handler_for(RequestSubmittedV1.event_type) is None


def test_the_handler_decorator_registers_and_returns_the_function() -> None:
    router: EventRouter[None] = EventRouter("svc")
    returned = router.handler(RequestSubmittedV1, PromptRenderedV1)(on_request)
    assert returned is on_request
    assert router.handler_for("cairn.request.submitted.v1") is on_request
    assert router.handler_for("cairn.prompt.rendered.v1") is on_request
    assert router.handler_for("cairn.completion.generated.v1") is None
    assert router.handler_for("cairn.not.registered.v1") is None
    assert router.consumed_types == {"cairn.request.submitted.v1", "cairn.prompt.rendered.v1"}


def test_a_second_handler_for_a_type_is_an_error() -> None:
    router: EventRouter[None] = EventRouter("svc")
    router.handler(RequestSubmittedV1)(on_request)
    with pytest.raises(ValueError, match=r"^svc: cairn\.request\.submitted\.v1 already has a handler$"):
        router.handler(RequestSubmittedV1)(on_other)
    assert router.handler_for(RequestSubmittedV1.event_type) is on_request


def test_topics_consumes_and_produces_name_topic_and_type() -> None:
    router: EventRouter[None] = EventRouter("svc")
    router.handler(ResponseCompletedV1, RequestSubmittedV1)(on_request)
    router.publishes(PromptRenderedV1, CompletionGeneratedV1)
    assert router.topics == ["cairn.requests", "cairn.responses"]
    assert router.consumes() == {
        ("cairn.requests", "cairn.request.submitted.v1"),
        ("cairn.responses", "cairn.response.completed.v1"),
    }
    assert router.produces() == {
        ("cairn.prompts", "cairn.prompt.rendered.v1"),
        ("cairn.completions", "cairn.completion.generated.v1"),
        ("cairn.deadletter", "cairn.deadletter.recorded.v1"),
    }
    assert router.published_types == {
        "cairn.prompt.rendered.v1",
        "cairn.completion.generated.v1",
        "cairn.deadletter.recorded.v1",
    }


def test_topics_are_unique_and_sorted() -> None:
    router: EventRouter[None] = EventRouter("svc")
    router.handler(InputScreenedV1)(on_request)
    router.handler(DeadLetterRecordedV1)(on_other)
    router.handler(RequestSubmittedV1)(on_other)
    assert router.topics == ["cairn.deadletter", "cairn.requests", "cairn.screenings"]


def test_all_events_catches_every_registered_type_but_specific_handlers_win() -> None:
    router: EventRouter[None] = EventRouter("audit")
    router.handler(RequestSubmittedV1)(on_request)
    assert router.all_events(on_other) is on_other
    assert router.handler_for(RequestSubmittedV1.event_type) is on_request
    for event_type in set(EVENT_TYPES) - {RequestSubmittedV1.event_type}:
        assert router.handler_for(event_type) is on_other, event_type
    assert router.handler_for("cairn.not.registered.v1") is None
    assert router.consumed_types == frozenset(EVENT_TYPES)
    assert router.topics == sorted({cls.topic for cls in EVENT_TYPES.values()})
    assert router.consumes() == {(cls.topic, t) for t, cls in EVENT_TYPES.items()}
    assert "cairn.deadletter" in router.topics


async def test_dead_letter_hook_runs_after_the_dead_letter_with_the_record_and_reason() -> None:
    from cairn_bus import Dispatcher, InMemoryPublisher, RawRecord
    from cairn_events import DeadLetterKind, RequestSubmittedV1

    router: EventRouter[list[tuple[int, str, str]]] = EventRouter("hooked")
    seen: list[tuple[int, str, str]] = []

    @router.handler(RequestSubmittedV1)
    async def on_request(event: object, meta: object, deps: object) -> None:
        raise AssertionError("not reached")

    @router.on_dead_letter
    async def rejected(
        record: RawRecord, kind: DeadLetterKind, reason: str, deps: list[tuple[int, str, str]]
    ) -> None:
        deps.append((record.offset, kind.value, reason))

    publisher = InMemoryPublisher()
    dispatcher = Dispatcher(router, seen, publisher, group_id="g")
    await dispatcher.dispatch(RawRecord("cairn.requests", 0, 7, b"{bad", headers=[("ce_id", b"1")]))
    assert len(publisher.messages) == 1
    assert seen == [
        (7, "missing_headers", "missing CloudEvents header(s): ce_specversion, ce_source, ce_type")
    ]


async def test_dispatch_batch_keeps_order_per_key_and_runs_keys_concurrently() -> None:
    import asyncio
    from types import SimpleNamespace

    from cairn_bus.service import dispatch_batch

    running: set[bytes] = set()
    overlap: list[int] = []
    order: list[tuple[bytes, int]] = []

    ended: list[int] = []

    class SlowDispatcher:
        async def end_batch(self) -> None:
            ended.append(len(order))

        async def dispatch(self, record: object) -> None:
            key = record.key  # type: ignore[attr-defined]
            running.add(key)
            overlap.append(len(running))
            await asyncio.sleep(0.01)
            order.append((key, record.offset))  # type: ignore[attr-defined]
            running.discard(key)

    records = [
        SimpleNamespace(topic="t", partition=0, offset=i, key=k, value=b"", headers=[], timestamp=0)
        for i, k in enumerate([b"a", b"b", b"a", b"c", b"b"])
    ]
    await dispatch_batch(SlowDispatcher(), records, concurrency=3)  # type: ignore[arg-type]
    assert [o for k, o in order if k == b"a"] == [0, 2]
    assert [o for k, o in order if k == b"b"] == [1, 4]
    assert max(overlap) == 3
    assert ended == [5], "the after-batch hook runs once, after every record"
    order.clear()
    overlap.clear()
    await dispatch_batch(SlowDispatcher(), records, concurrency=1)  # type: ignore[arg-type]
    assert [o for _, o in order] == [0, 1, 2, 3, 4]
    assert max(overlap) == 1


async def test_dispatch_batch_raises_after_every_key_finished() -> None:
    from types import SimpleNamespace

    import pytest

    from cairn_bus.service import dispatch_batch

    done: list[int] = []

    ended: list[bool] = []
    failed: list[bool] = []

    class Flaky:
        def batch_failed(self) -> None:
            failed.append(True)

        async def end_batch(self) -> None:
            ended.append(True)

        async def dispatch(self, record: object) -> None:
            if record.key == b"bad":  # type: ignore[attr-defined]
                raise ConnectionError("database down")
            done.append(record.offset)  # type: ignore[attr-defined]

    records = [
        SimpleNamespace(topic="t", partition=0, offset=i, key=k, value=b"", headers=[], timestamp=0)
        for i, k in enumerate([b"bad", b"ok1", b"ok2"])
    ]
    with pytest.raises(ConnectionError):
        await dispatch_batch(Flaky(), records, concurrency=4)  # type: ignore[arg-type]
    assert sorted(done) == [1, 2]
    assert ended == [True], "buffered work of the handled records is still flushed"
    assert failed == [True], "the rewound batch is counted once"


def test_a_router_with_shadows_also_reads_the_shadow_topic_of_what_it_consumes() -> None:
    plain: EventRouter[None] = EventRouter("svc")
    plain.handler(ResponseCompletedV1, RequestSubmittedV1)(on_request)
    shadowed: EventRouter[None] = EventRouter("svc", shadows=True)
    shadowed.handler(ResponseCompletedV1, RequestSubmittedV1)(on_request)
    response = ResponseCompletedV1.event_type
    assert plain.topics == ["cairn.requests", "cairn.responses"]
    assert shadowed.topics == ["cairn.requests", "cairn.responses", "cairn.responses.shadow"]
    assert ("cairn.responses.shadow", response) in shadowed.consumes()
    assert ("cairn.responses.shadow", response) not in plain.consumes()
    # cairn.requests has no shadow topic: nothing else is added
    assert shadowed.consumes() - plain.consumes() == {("cairn.responses.shadow", response)}
