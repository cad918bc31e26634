"""Audit payloads encrypted per tenant: sealed before they are chained and stored, opened when read.

A tenant's event is stored with the payload `{"sealed": "cairn-enc:v1:<key id>:..."}` (the whole
payload, as JSON, sealed under the tenant's data key; nothing queries inside payloads); the hash
chain covers that stored form, so verifying the chain needs no key, before or after an erasure.
Events without a tenant (platform events such as a model registration) and admin actions (which
must outlive an erasure, the erasure itself included) are stored as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from cairn_audit.domain.records import AuditRecord
from cairn_auth.encryption import ERASED, SEALED_FIELD, Keyring, sealed_token

SEALED = SEALED_FIELD
"""The only key of a stored sealed payload."""
ERASED_PAYLOAD: Mapping[str, Any] = {"erased": ERASED}
"""What readers get instead of the payload of an erased tenant's event."""
_CLEAR_TYPES = ("cairn.admin_action.",)


def is_sealable(record: AuditRecord) -> bool:
    """Whether the record's payload is encrypted when stored: a tenant's event, not an admin action."""
    return record.tenant is not None and not record.event_type.startswith(_CLEAR_TYPES)


async def seal_records(keyring: Keyring | None, records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """The records as stored: each sealable record's payload sealed (kept in `sealed_payload`)."""
    out = list(records)
    if keyring is None:
        return out
    todo = [i for i, r in enumerate(out) if is_sealable(r)]
    sealed = await keyring.seal_json_many((str(out[i].tenant), out[i].payload) for i in todo)
    for i, payload in zip(todo, sealed, strict=True):
        out[i] = replace(out[i], sealed_payload=payload)
    return out


async def open_records(keyring: Keyring | None, records: list[AuditRecord]) -> list[AuditRecord]:
    """The records as readers see them: sealed payloads opened (`ERASED_PAYLOAD` for an erased
    tenant's); the stored form stays in `sealed_payload`, so the records still verify. Without a
    keyring, sealed payloads are returned as stored."""
    if keyring is None or not any(sealed_token(r.payload) for r in records):
        return records
    opened = await keyring.open_json_many([r.payload for r in records])
    for i, (r, payload) in enumerate(zip(records, opened, strict=True)):
        if sealed_token(r.payload) is not None:
            records[i] = replace(
                r, payload=payload if payload is not None else dict(ERASED_PAYLOAD), sealed_payload=r.payload
            )
    return records
