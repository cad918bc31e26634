"""Cairn event bus: CloudEvents binary envelope over Kafka, publishers, dispatch, inbox, dead letters."""

from cairn_bus.deadletter import dead_letter_event, publish_dead_letter
from cairn_bus.dispatcher import Dispatcher, Outcome, TransientError
from cairn_bus.envelope import EnvelopeError, EventMeta, Origin, meta_from_headers
from cairn_bus.ids import derive_event_id, new_event_id
from cairn_bus.inbox import Claim, Inbox, InMemoryInbox, PostgresInbox
from cairn_bus.publisher import (
    BasePublisher,
    InMemoryPublisher,
    OutgoingMessage,
    Publisher,
    UndeclaredPublicationError,
    build_meta,
)
from cairn_bus.records import RawRecord
from cairn_bus.router import EventRouter

__all__ = [
    "BasePublisher",
    "Claim",
    "Dispatcher",
    "EnvelopeError",
    "EventMeta",
    "EventRouter",
    "InMemoryInbox",
    "InMemoryPublisher",
    "Inbox",
    "Origin",
    "Outcome",
    "OutgoingMessage",
    "PostgresInbox",
    "Publisher",
    "RawRecord",
    "TransientError",
    "UndeclaredPublicationError",
    "build_meta",
    "dead_letter_event",
    "derive_event_id",
    "meta_from_headers",
    "new_event_id",
    "publish_dead_letter",
]
