"""The `Publisher` port: handlers publish schema models; the publisher builds the envelope.

The new event's id is derived from its cause, its correlation id, tenant and trace context are
carried over from the cause, so a handler that runs twice publishes the same event twice, which
consumers (and the audit store) recognise as one.

Replay and shadow traffic: an event whose envelope carries a replay id (`ce_replayid`, inherited
from its cause, or given with `replay_id=` to start a shadow trail from a live event) is published
on its topic's shadow topic when the topic has one (`cairn_events.topics.shadow_topic`: today
`cairn.responses` -> `cairn.responses.shadow`), so an upstream system never receives an answer to
a request it did not send.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol

from cairn_bus.envelope import EventMeta
from cairn_bus.ids import derive_event_id, new_event_id
from cairn_bus.signing import Signer, SigningConfigError, signatures_required, signer_from_env
from cairn_events import CONTENT_TYPE_JSON, PRIVILEGED_EVENT_TYPES, Event, dataschema_uri, encode
from cairn_events.topics import shadow_topic
from cairn_observability import EVENTS_PUBLISHED, inject_trace_headers


class UndeclaredPublicationError(RuntimeError):
    """A service tried to publish an event type it does not declare in its router."""


@dataclass(frozen=True)
class OutgoingMessage:
    """One Kafka record ready to send: topic, key, value and CloudEvents headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    meta: EventMeta
    event: Event | None = None


class Publisher(Protocol):
    """Publishes events of the schema registry onto their topics."""

    async def publish(
        self,
        event: Event,
        *,
        cause: EventMeta | None = None,
        discriminator: str = "",
        event_id: str | None = None,
        correlation_id: str | None = None,
        replay_id: str | None = None,
        replay_of: str | None = None,
    ) -> EventMeta:
        """Publish `event`; its id is derived from `cause` (random without one) unless `event_id` is given.

        `replay_id`/`replay_of` start a replay or shadow trail (see `build_meta`); such an event goes
        to its topic's shadow topic when there is one. Returns the envelope that was sent. Raises
        UndeclaredPublicationError for a type the service does not declare.
        """
        ...


def build_meta(
    event: Event,
    *,
    source: str,
    cause: EventMeta | None = None,
    discriminator: str = "",
    event_id: str | None = None,
    correlation_id: str | None = None,
    content_type: str = CONTENT_TYPE_JSON,
    now: datetime | None = None,
    replay_id: str | None = None,
    replay_of: str | None = None,
) -> EventMeta:
    """The envelope of a new event caused by `cause` (or of a new trail when `cause` is None).

    The replay id is `replay_id` when given, else the cause's: every event derived from a replayed
    or shadow event belongs to the same replay. `replay_id` given beside a live cause (one without
    that replay id) starts a shadow trail from it: the derived event id then depends on the replay
    id too, so two shadows of one live event never collide. `replay_of` (`ce_replayof`) names the
    original event a replayed event stands for.
    """
    starts_replay = replay_id is not None and cause is not None and cause.replay_id != replay_id
    if starts_replay:
        discriminator = f"{discriminator}|replay:{replay_id}"
    if event_id is None:
        event_id = derive_event_id(cause.id, event.event_type, discriminator) if cause else new_event_id()
    subject = event.subject() or (cause.subject if cause else None)
    trace_headers = inject_trace_headers()
    if not trace_headers and cause is not None and cause.traceparent:
        trace_headers = {"traceparent": cause.traceparent}
        if cause.tracestate:
            trace_headers["tracestate"] = cause.tracestate
    if correlation_id is not None:
        correlation = correlation_id
    elif cause is not None:
        correlation = cause.correlation_id or cause.id
    else:
        correlation = subject or event_id
    tenant = getattr(event, "tenant", None) or (cause.tenant if cause else None)
    return EventMeta(
        id=event_id,
        type=event.event_type,
        source=source,
        time=now or datetime.now(UTC),
        content_type=content_type,
        subject=subject,
        dataschema=dataschema_uri(event.event_type),
        correlation_id=correlation,
        causation_id=cause.id if cause else None,
        tenant=tenant if isinstance(tenant, str) else None,
        replay_of=replay_of,
        replay_id=replay_id if replay_id is not None else (cause.replay_id if cause else None),
        traceparent=trace_headers.get("traceparent"),
        tracestate=trace_headers.get("tracestate"),
    )


def destination(topic: str, meta: EventMeta) -> str:
    """Where an event of `topic` with envelope `meta` is published: the topic's shadow topic for a
    replay or shadow event (`meta.replay_id` set) when it has one, else `topic`."""
    if meta.replay_id:
        return shadow_topic(topic) or topic
    return topic


class KeyFrom(Enum):
    """Where a publisher's signing key comes from when none is passed."""

    ENVIRONMENT = "environment"


class BasePublisher(ABC):
    """Builds the record for an event and hands it to `_send`; checks declared publications.

    Privileged events (`PRIVILEGED_EVENT_TYPES`) are signed with `signer`: by default the process's
    key (`cairn_bus.signing.signer_from_env`). Without a key they go out unsigned, unless
    `CAIRN_REQUIRE_SIGNATURES` is set: then building one raises SigningConfigError.
    """

    def __init__(
        self,
        source: str,
        *,
        allowed_types: Iterable[str] | None = None,
        content_type: str = CONTENT_TYPE_JSON,
        service: str | None = None,
        signer: Signer | KeyFrom | None = KeyFrom.ENVIRONMENT,
    ) -> None:
        self.source = source
        self.service = service or source.rsplit("/", 1)[-1]
        self.allowed_types = frozenset(allowed_types) if allowed_types is not None else None
        self.content_type = content_type
        from_env = signer is KeyFrom.ENVIRONMENT
        self.signer: Signer | None = signer_from_env() if isinstance(signer, KeyFrom) else signer
        self._must_sign = from_env and signatures_required()

    def build(
        self,
        event: Event,
        *,
        cause: EventMeta | None = None,
        discriminator: str = "",
        event_id: str | None = None,
        correlation_id: str | None = None,
        replay_id: str | None = None,
        replay_of: str | None = None,
    ) -> OutgoingMessage:
        """The record `publish` would send: on the event's topic, or on its shadow topic when the
        envelope has a replay id and the topic has one."""
        if self.allowed_types is not None and event.event_type not in self.allowed_types:
            raise UndeclaredPublicationError(
                f"{self.source} does not declare {event.event_type}; add it to the service's router"
            )
        meta = build_meta(
            event,
            source=self.source,
            cause=cause,
            discriminator=discriminator,
            event_id=event_id,
            correlation_id=correlation_id,
            content_type=self.content_type,
            replay_id=replay_id,
            replay_of=replay_of,
        )
        value = encode(event, self.content_type)
        headers = meta.to_headers()
        if event.event_type in PRIVILEGED_EVENT_TYPES:
            if self.signer is not None:
                headers = self.signer.sign(headers, value)
            elif self._must_sign:
                raise SigningConfigError(
                    f"{self.source} has no signing key and CAIRN_REQUIRE_SIGNATURES is set: "
                    f"{event.event_type} is privileged and is not published unsigned"
                )
        return OutgoingMessage(
            topic=destination(event.topic, meta),
            key=event.partition_key().encode(),
            value=value,
            headers=headers,
            meta=meta,
            event=event,
        )

    async def publish(
        self,
        event: Event,
        *,
        cause: EventMeta | None = None,
        discriminator: str = "",
        event_id: str | None = None,
        correlation_id: str | None = None,
        replay_id: str | None = None,
        replay_of: str | None = None,
    ) -> EventMeta:
        message = self.build(
            event,
            cause=cause,
            discriminator=discriminator,
            event_id=event_id,
            correlation_id=correlation_id,
            replay_id=replay_id,
            replay_of=replay_of,
        )
        await self.send(message)
        EVENTS_PUBLISHED.labels(self.service, message.topic, event.event_type).inc()
        return message.meta

    @abstractmethod
    async def send(self, message: OutgoingMessage) -> None:
        """Deliver one record; returns when the broker (or fake) has it."""


class InMemoryPublisher(BasePublisher):
    """Keeps what was published, in order; for unit tests of handlers."""

    def __init__(
        self,
        source: str = "/cairn/test",
        *,
        allowed_types: Iterable[str] | None = None,
        content_type: str = CONTENT_TYPE_JSON,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(source, allowed_types=allowed_types, content_type=content_type, signer=signer)
        self.messages: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> None:
        self.messages.append(message)

    def events(self, event_type: str | None = None) -> list[Event]:
        """The published events, optionally of one type."""
        return [
            m.event
            for m in self.messages
            if m.event is not None and (event_type is None or m.meta.type == event_type)
        ]
