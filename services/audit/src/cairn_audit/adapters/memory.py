"""An in-memory audit store for unit tests; the same behaviour suite runs against PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from cairn_audit.domain.records import GENESIS_HASH, AuditRecord, ChainBreak, chain, verify_chain


class InMemoryAuditStore:
    """Keeps records in a list; ids are unique, the chain is computed as in PostgreSQL."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self._ids: set[str] = set()

    async def append(self, records: Sequence[AuditRecord]) -> int:
        now = datetime.now(UTC)
        fresh: list[AuditRecord] = []
        for r in records:
            if r.event_id not in self._ids:
                self._ids.add(r.event_id)
                fresh.append(replace(r, recorded_at=now))
        head = self.records[-1].hash if self.records else GENESIS_HASH
        for linked in chain(fresh, head or GENESIS_HASH):
            self.records.append(replace(linked, seq=len(self.records) + 1))
        return len(fresh)

    async def trail(self, request_id: str, tenant: str | None = None) -> list[AuditRecord]:
        return [
            r
            for r in self.records
            if request_id in (r.subject, r.correlation_id) and (tenant is None or r.tenant == tenant)
        ]

    async def trails(self, request_ids: Sequence[str]) -> dict[str, list[AuditRecord]]:
        return {request_id: await self.trail(request_id) for request_id in request_ids}

    async def events(
        self,
        *,
        event_type: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        found = [
            r
            for r in self.records
            if (event_type is None or r.event_type == event_type)
            and (tenant is None or r.tenant == tenant)
            and (since is None or r.event_time >= since)
            and (until is None or r.event_time < until)
            and (after_seq is None or (r.seq or 0) > after_seq)
        ]
        return found[::-1][:limit] if newest_first else found[:limit]

    async def in_range(
        self, topic: str, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> list[AuditRecord]:
        out = [
            r
            for r in self.records
            if r.topic == topic
            and (start is None or r.event_time >= start)
            and (end is None or r.event_time < end)
        ]
        return out[:limit] if limit is not None else out

    async def get(self, event_id: str) -> AuditRecord | None:
        return next((r for r in self.records if r.event_id == event_id), None)

    async def verify(self) -> list[ChainBreak]:
        return verify_chain(self.records)

    async def count(self) -> int:
        return len(self.records)
