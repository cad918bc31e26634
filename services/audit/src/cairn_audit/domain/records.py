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

    def canonical(self) -> bytes:
        """The bytes the chain hashes: every stored field except seq and the hashes themselves."""
        body = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "source": self.source,
            "event_time": self.event_time.astimezone(UTC).isoformat(),
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "payload": self.payload,
            "headers": self.headers,
            "content_type": self.content_type,
            "key": self.key,
            "subject": self.subject,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "tenant": self.tenant,
            "replay_of": self.replay_of,
            "replay_id": self.replay_id,
            "recorded_at": self.recorded_at.astimezone(UTC).isoformat() if self.recorded_at else None,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, record: AuditRecord) -> str:
    """sha256 over the previous hash and the record's canonical bytes."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(record.canonical())
    return digest.hexdigest()


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
