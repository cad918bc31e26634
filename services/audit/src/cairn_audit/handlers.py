"""The audit service's one handler: store every event, once, with where it was read."""

from __future__ import annotations

from cairn_audit.bootstrap import Deps
from cairn_audit.domain.records import AuditRecord
from cairn_bus import EventMeta
from cairn_events import Event


def record_of(event: Event, meta: EventMeta) -> AuditRecord:
    """The audit record of a consumed event."""
    origin = meta.origin
    return AuditRecord(
        event_id=meta.id,
        event_type=meta.type,
        source=meta.source,
        event_time=meta.time,
        topic=origin.topic if origin else event.topic,
        partition=origin.partition if origin else -1,
        offset=origin.offset if origin else -1,
        key=origin.key.decode("utf-8", "backslashreplace") if origin and origin.key is not None else None,
        payload=event.model_dump(mode="json"),
        headers=meta.header_map(),
        content_type=meta.content_type,
        subject=meta.subject,
        correlation_id=meta.correlation_id,
        causation_id=meta.causation_id,
        tenant=meta.tenant,
        replay_of=meta.replay_of,
        replay_id=meta.replay_id,
    )


async def on_any_event(event: Event, meta: EventMeta, deps: Deps) -> None:
    """Store the event; a redelivered event is already stored and changes nothing."""
    await deps.store.append([record_of(event, meta)])
