"""The audit store port: append-once storage of events with a hash chain, and the queries on it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from cairn_audit.domain.records import AuditRecord, ChainBreak


class AuditStore(Protocol):
    """Stores every event once, chained by hash, and answers trail and range queries."""

    async def append(self, records: Sequence[AuditRecord]) -> int:
        """Store records not stored before (by event id), chained in the given order; returns how many were new."""
        ...

    async def trail(self, request_id: str, tenant: str | None = None) -> list[AuditRecord]:
        """Every stored event of the request (subject or correlation id), in storage order; with
        `tenant`, only the events of that tenant."""
        ...

    async def trails(self, request_ids: Sequence[str]) -> dict[str, list[AuditRecord]]:
        """The trails of several requests at once (as `trail`, any tenant), by request id; a request
        with no stored event maps to an empty list."""
        ...

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
        """Stored events in storage order (`newest_first`: the reverse, the newest `limit`), at most
        `limit`: of one type, of one tenant (None: any, events without a tenant included), with event
        time in [since, until), stored after `after_seq` (a cursor: the last seq of the previous page)."""
        ...

    async def in_range(
        self, topic: str, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> list[AuditRecord]:
        """Events read from `topic` with event time in [start, end), in storage order."""
        ...

    async def get(self, event_id: str) -> AuditRecord | None:
        """One stored event."""
        ...

    async def verify(self) -> list[ChainBreak]:
        """Recompute the whole chain; every break found (empty when intact)."""
        ...

    async def count(self) -> int:
        """How many events are stored."""
        ...
