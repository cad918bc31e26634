"""Replays: re-publish a time range of a topic, from the audit store or from the broker.

Each replayed message keeps its payload, key and envelope, gets a new id derived from the
original id and the replay id (so re-running one replay publishes nothing new), and carries the
original id in `ce_replayof` and the replay run in `ce_replayid`. Replaying a replayed event
points at the first original, so one replay run yields one copy of each original.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from cairn_audit.domain.records import AuditRecord
from cairn_bus import derive_event_id
from cairn_bus.records import RawRecord

REPLAY_EVENT = "cairn.replay"


@dataclass(frozen=True)
class ReplayMessage:
    """One message to re-publish."""

    original_id: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class ReplayReport:
    """What a replay did."""

    replay_id: str
    source: str
    from_topic: str
    to_topic: str
    published: int = 0
    skipped: int = 0
    ids: list[tuple[str, str]] = field(default_factory=list)


def replay_headers(
    headers: Sequence[tuple[str, bytes]], original_id: str, replay_id: str
) -> list[tuple[str, bytes]]:
    """The original headers with a derived ce_id, a fresh ce_time, ce_replayof and ce_replayid."""
    new_id = derive_event_id(original_id, REPLAY_EVENT, replay_id)
    drop = {"ce_id", "ce_time", "ce_replayof", "ce_replayid"}
    out = [(k, v) for k, v in headers if k not in drop]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out += [
        ("ce_id", new_id.encode()),
        ("ce_time", now.encode()),
        ("ce_replayof", original_id.encode()),
        ("ce_replayid", replay_id.encode()),
    ]
    return out


def from_audit(records: Sequence[AuditRecord]) -> list[ReplayMessage]:
    """Messages rebuilt from stored events (JSON payload, stored headers)."""
    out = []
    for r in records:
        headers = [(k, v.encode()) for k, v in r.headers.items()]
        headers = [(k, v) for k, v in headers if k != "content-type"] + [
            ("content-type", b"application/json")
        ]
        value = json.dumps(r.payload, separators=(",", ":"), ensure_ascii=False).encode()
        original = r.replay_of or r.event_id  # a replay of a replay points at the first original
        out.append(ReplayMessage(original, r.key.encode() if r.key is not None else None, value, headers))
    return out


def from_broker(records: Sequence[RawRecord]) -> tuple[list[ReplayMessage], int]:
    """Messages copied byte for byte from the broker; records without a ce_id are skipped (counted)."""
    out, skipped = [], 0
    for r in records:
        hdrs = [(k, v or b"") for k, v in r.headers]
        named = {k: v.decode("utf-8", "replace") for k, v in hdrs if k in ("ce_id", "ce_replayof")}
        original = named.get("ce_replayof") or named.get("ce_id")
        if not original:
            skipped += 1
            continue
        out.append(ReplayMessage(original, r.key, r.value, hdrs))
    return out, skipped


async def publish_replay(
    producer: AIOKafkaProducer, messages: Sequence[ReplayMessage], report: ReplayReport
) -> ReplayReport:
    """Send `messages` to `report.to_topic` in order; fills in the report."""
    for m in messages:
        headers = replay_headers(m.headers, m.original_id, report.replay_id)
        await producer.send_and_wait(report.to_topic, value=m.value, key=m.key, headers=headers)
        new_id = next(v.decode() for k, v in headers if k == "ce_id")
        report.ids.append((m.original_id, new_id))
        report.published += 1
    return report
