"""One stored event and the hash chain that makes tampering detectable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    """An event as the audit service stores it: envelope, payload and where it was read."""

    event_id: str
    event_type: str
    source: str
    event_time: datetime
    topic: str
    partition: int
    offset: int
    payload: Mapping[str, Any]
    headers: Mapping[str, str]
    content_type: str = "application/json"
    key: str | None = None
    subject: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    tenant: str | None = None
    replay_of: str | None = None
    replay_id: str | None = None
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None
    recorded_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    sealed_payload: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """What the table holds instead of `payload` when the payload is encrypted (the chain covers
    this); None when the payload is stored as it is. Not compared: a record read back equals the
    record appended."""

    def canonical(self) -> bytes:
        """The bytes the chain hashes: every stored field except seq and the hashes themselves."""
        return _canonical(self, _utc_text(self.recorded_at) if self.recorded_at else None)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _canonical(record: AuditRecord, recorded_at: str | None) -> bytes:
    body = {
        "event_id": record.event_id,
        "event_type": record.event_type,
        "source": record.source,
        "event_time": _utc_text(record.event_time),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "payload": record.payload if record.sealed_payload is None else record.sealed_payload,
        "headers": record.headers,
        "content_type": record.content_type,
        "key": record.key,
        "subject": record.subject,
        "correlation_id": record.correlation_id,
        "causation_id": record.causation_id,
        "tenant": record.tenant,
        "replay_of": record.replay_of,
        "replay_id": record.replay_id,
        "recorded_at": recorded_at,
    }
    return _CANONICAL_JSON.encode(body).encode()


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: AuditRecord) -> str:
    """sha256 over the previous hash and the record's canonical bytes."""
    return _link(prev_hash, record.canonical())


def _link(prev_hash: str, canonical: bytes) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical)
    return digest.hexdigest()


def chain_hashes(records: Iterable[AuditRecord], prev_hash: str, recorded_at: datetime) -> list[str]:
    """The hash of each record linked after `prev_hash`, in order, as stored with `recorded_at`
    (the records' own `recorded_at` is not read): what `chain` computes, without the copies."""
    at = _utc_text(recorded_at)
    hashes: list[str] = []
    for record in records:
        prev_hash = _link(prev_hash, _canonical(record, at))
        hashes.append(prev_hash)
    return hashes


def chain(records: Iterable[AuditRecord], prev_hash: str) -> list[AuditRecord]:
    """Link `records` after `prev_hash`, in order; returns copies carrying prev_hash and hash."""
    linked: list[AuditRecord] = []
    for record in records:
        h = chain_hash(prev_hash, record)
        linked.append(replace(record, prev_hash=prev_hash, hash=h))
        prev_hash = h
    return linked


@dataclass(frozen=True)
class ChainBreak:
    """Where verification failed and why."""

    seq: int | None
    event_id: str
    reason: str


def verify_chain(records: Iterable[AuditRecord], prev_hash: str = GENESIS_HASH) -> list[ChainBreak]:
    """Every place where a stored record does not hash to what the chain says; empty when intact."""
    breaks: list[ChainBreak] = []
    for record in records:
        if record.prev_hash != prev_hash:
            breaks.append(
                ChainBreak(record.seq, record.event_id, "prev_hash does not match the record before")
            )
        expected = chain_hash(record.prev_hash or prev_hash, record)
        if record.hash != expected:
            breaks.append(ChainBreak(record.seq, record.event_id, "content does not match its hash"))
        prev_hash = record.hash or expected
    return breaks
