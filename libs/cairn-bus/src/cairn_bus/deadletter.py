"""Dead-letter records: the reason, the original bytes and headers, and where they came from."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cairn_bus.envelope import EventMeta
from cairn_bus.ids import derive_event_id
from cairn_bus.publisher import Publisher
from cairn_bus.records import RawRecord
from cairn_events import DeadLetterKind, DeadLetterRecordedV1, RawHeader


def _b64(data: bytes | None) -> str:
    return base64.b64encode(data or b"").decode("ascii")


def dead_letter_event(
    record: RawRecord, kind: DeadLetterKind, reason: str, group: str
) -> DeadLetterRecordedV1:
    """The dead-letter event describing `record` and why `group` could not handle it."""
    return DeadLetterRecordedV1(
        reason=reason,
        error_kind=kind,
        origin_topic=record.topic,
        origin_partition=record.partition,
        origin_offset=record.offset,
        consumer_group=group,
        original_key_b64=_b64(record.key) if record.key is not None else None,
        original_value_b64=_b64(record.value),
        original_headers=[RawHeader(key=k, value_b64=_b64(v)) for k, v in record.headers],
        dead_lettered_at=datetime.now(UTC),
    )


def _header(record: RawRecord, name: str) -> str | None:
    for key, value in record.headers:
        if key == name and value:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


async def publish_dead_letter(
    publisher: Publisher, record: RawRecord, kind: DeadLetterKind, reason: str, group: str
) -> EventMeta:
    """Publish the dead letter once per (record, group): its id is derived from the record's origin.

    When the broken message still names its request (ce_subject / ce_correlationid), the dead
    letter joins that request's trail.
    """
    event = dead_letter_event(record, kind, reason, group)
    event_id = derive_event_id(f"{record.topic}/{record.partition}/{record.offset}", event.event_type, group)
    correlation = _header(record, "ce_correlationid") or _header(record, "ce_subject")
    return await publisher.publish(event, event_id=event_id, correlation_id=correlation)
