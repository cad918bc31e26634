"""The audit service's handlers: buffer every event of a batch, store the batch once, in order."""

from __future__ import annotations

import json

from cairn_audit.bootstrap import Deps
from cairn_audit.domain.records import AuditRecord
from cairn_auth.encryption import TENANT_ERASE
from cairn_bus import EventMeta, RawRecord, publish_dead_letter
from cairn_bus.dispatcher import TRANSIENT
from cairn_events import AdminActionRecordedV1, DeadLetterKind, Event
from cairn_observability import get_logger

log = get_logger("cairn.audit")


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
    """Buffer the event's record; `flush` stores the batch's records in one transaction. A tenant's
    erasure (admin action `tenant.erase`) is buffered too: `flush` destroys the tenant's key."""
    deps.pending.append(record_of(event, meta))
    if isinstance(event, AdminActionRecordedV1) and event.action == TENANT_ERASE:
        deps.erasures.append(event.target)


async def flush(deps: Deps) -> None:
    """Store the buffered records (after the batch, before its offsets are committed).

    A redelivered event is already stored and changes nothing. A transient failure (database
    down) propagates, so the batch is consumed again. Any other failure is one bad row: the records
    are stored one by one and the ones that cannot be stored are dead-lettered, so a poison row
    never blocks the others.
    """
    records, deps.pending = deps.pending, []
    erasures, deps.erasures = deps.erasures, []
    if not records:
        return
    await _store(deps, records)
    for tenant in dict.fromkeys(erasures):
        await erase_tenant(deps, tenant)


async def erase_tenant(deps: Deps, tenant: str) -> None:
    """Destroy the tenant's data key (idempotent): its stored payloads become unreadable, the
    chain (over the stored ciphertext) still verifies."""
    if deps.keyring is None:
        log.warning(
            "tenant erasure asked, but no master key is configured: payloads are not encrypted", tenant=tenant
        )
        return
    destroyed = await deps.keyring.erase(tenant)
    log.info("tenant erased", tenant=tenant, keys_destroyed=destroyed)


async def _store(deps: Deps, records: list[AuditRecord]) -> None:
    try:
        await deps.store.append(records)
    except TRANSIENT:
        raise
    except Exception:
        for record in records:
            try:
                await deps.store.append([record])
            except TRANSIENT:
                raise
            except Exception as exc:
                log.error("event cannot be stored", event_id=record.event_id, error=repr(exc))
                await publish_dead_letter(
                    deps.publisher,
                    _raw(record),
                    DeadLetterKind.HANDLER_FAILED,
                    f"the audit store rejected the event: {exc!r}",
                    deps.group_id,
                )


def _raw(record: AuditRecord) -> RawRecord:
    return RawRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        value=json.dumps(record.payload, ensure_ascii=False).encode(),
        key=record.key.encode() if record.key is not None else None,
        headers=[(k, v.encode()) for k, v in record.headers.items()],
    )
