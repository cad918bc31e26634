"""A service's declared handlers and publications: the single place its contract is read from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from cairn_bus.envelope import EventMeta
from cairn_events import EVENT_TYPES, DeadLetterRecordedV1, Event
from cairn_events.topics import shadow_topic

D = TypeVar("D")
Handler = Callable[[Any, EventMeta, D], Awaitable[None]]
# called after a record was dead-lettered: (record, kind, reason, deps)
DeadLetterHook = Callable[[Any, Any, str, D], Awaitable[None]]
H = TypeVar("H", bound=Callable[..., Awaitable[None]])
# builds the answer to a salvaged request: (found, kind, reason, deps) -> event or None
AnswerBuilder = Callable[[Any, Any, str, D], "Event | None"]


class EventRouter(Generic[D]):
    """Maps event types to handlers `on_<event>(event, meta, deps)` and lists what the service publishes.

    Every service may publish dead letters. `all_events` registers a handler for every type in the
    registry (the audit service). With `shadows=True` the service also reads the shadow topic of each
    topic it consumes (`cairn.responses.shadow`: the answers of replayed and shadow requests); a record
    goes to the handler of its type whichever of the two topics it came from (the envelope's
    `replay_id` tells them apart).
    """

    def __init__(self, service: str, *, shadows: bool = False) -> None:
        self.service = service
        self.shadows = shadows
        self._handlers: dict[str, Handler[D]] = {}
        self._catch_all: Handler[D] | None = None
        self._publishes: set[str] = {DeadLetterRecordedV1.event_type}
        self.dead_letter_hook: DeadLetterHook[D] | None = None
        self.batch_end_hook: Callable[[D], Awaitable[None]] | None = None

    def handler(self, *event_classes: type[Event]) -> Callable[[H], H]:
        """Decorator: the function handles these event types."""

        def register(func: H) -> H:
            for cls in event_classes:
                if cls.event_type in self._handlers:
                    raise ValueError(f"{self.service}: {cls.event_type} already has a handler")
                self._handlers[cls.event_type] = func
            return func

        return register

    def all_events(self, func: H) -> H:
        """Decorator: the function handles every registered event type not handled otherwise."""
        self._catch_all = func
        return func

    def on_dead_letter(self, func: H) -> H:
        """Decorator: `func(record, kind, reason, deps)` runs after a record was dead-lettered.

        For example, the entry service answers a request it could not read with a rejection
        when the request id can still be read from the bytes.
        """
        self.dead_letter_hook = func
        return func

    def answer_dead_lettered(
        self, event_class: type[Event], answer_class: type[Event]
    ) -> Callable[[AnswerBuilder[D]], AnswerBuilder[D]]:
        """Decorator: when a record of `event_class` is dead-lettered and a request id can still be
        read from it (`cairn_bus.salvage.salvage_request`), `build(found, kind, reason, deps)` makes the
        request's answer, an `answer_class` event (declared as published here), or None for no
        answer, and the router publishes it through
        `deps.publisher`: under the record's envelope when its headers can be read, else with an id
        derived from the record's origin, so a redelivered record yields the same answer (caused by
        the record's `ce_id` and in its trace when it has those headers: `SalvagedRequest.partial_cause`).
        """

        self._publishes.add(answer_class.event_type)

        def register(build: AnswerBuilder[D]) -> AnswerBuilder[D]:
            from cairn_bus.salvage import salvage_request

            async def hook(record: Any, kind: Any, reason: str, deps: D) -> None:
                ce_type = dict(record.headers).get("ce_type")
                if record.topic != event_class.topic or (
                    ce_type and ce_type.decode("utf-8", "replace") != event_class.event_type
                ):
                    return
                found = salvage_request(record)
                if found is None:
                    return
                answer = build(found, kind, reason, deps)
                if answer is None:
                    return
                if not isinstance(answer, answer_class):
                    raise TypeError(f"{self.service}: a dead-letter answer must be {answer_class.__name__}")
                await deps.publisher.publish(  # type: ignore[attr-defined]
                    answer,
                    cause=found.cause or found.partial_cause(),
                    event_id=found.answer_id(answer.event_type, self.service),
                    correlation_id=None if found.cause else found.request_id,
                )

            self.dead_letter_hook = hook
            return build

        return register

    def after_batch(self, func: H) -> H:
        """Decorator: `func(deps)` runs after every record of a consumed batch, before it is committed.

        Lets a handler buffer work (the audit service's inserts) and do it once per batch; an
        exception rewinds the batch like a transient handler failure.
        """
        self.batch_end_hook = func
        return func

    def publishes(self, *event_classes: type[Event]) -> None:
        """Declare event types this service publishes."""
        self._publishes.update(cls.event_type for cls in event_classes)

    def handler_for(self, event_type: str) -> Handler[D] | None:
        """The handler of `event_type`, or None when the service ignores it."""
        found = self._handlers.get(event_type)
        if found is None and self._catch_all is not None and event_type in EVENT_TYPES:
            return self._catch_all
        return found

    @property
    def consumed_types(self) -> frozenset[str]:
        """Event types this service handles."""
        if self._catch_all is not None:
            return frozenset(EVENT_TYPES)
        return frozenset(self._handlers)

    @property
    def published_types(self) -> frozenset[str]:
        """Event types this service publishes."""
        return frozenset(self._publishes)

    @property
    def topics(self) -> list[str]:
        """The topics the service subscribes to, sorted."""
        return sorted({topic for topic, _ in self.consumes()})

    def consumes(self) -> frozenset[tuple[str, str]]:
        """(topic, event type) pairs consumed (shadow topics included, with `shadows=True`)."""
        pairs = {(EVENT_TYPES[t].topic, t) for t in self.consumed_types}
        if self.shadows:
            pairs |= {(shadow, t) for topic, t in pairs if (shadow := shadow_topic(topic)) is not None}
        return frozenset(pairs)

    def produces(self) -> frozenset[tuple[str, str]]:
        """(topic, event type) pairs published."""
        return frozenset((EVENT_TYPES[t].topic, t) for t in self.published_types)
