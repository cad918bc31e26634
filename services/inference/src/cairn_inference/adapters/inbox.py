"""Inboxes of handled input events: in memory (bounded) or in PostgreSQL (shared by replicas)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cairn_bus import PostgresInbox, TransientError
from cairn_bus.inbox import is_database_outage

__all__ = ["MemoryInbox", "PostgresInboxClaims"]


class MemoryInbox:
    """Claims held in this process: the most recent `capacity` event ids.

    Enough for redeliveries within one process (a rewound batch, a retried handler); a
    redelivery to another replica after a rebalance is caught only by the PostgreSQL inbox.
    A claim being worked on makes a concurrent duplicate wait for its outcome.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._done: OrderedDict[str, None] = OrderedDict()
        self._working: dict[str, asyncio.Event] = {}

    @asynccontextmanager
    async def claim(self, event_id: str) -> AsyncIterator[bool]:
        while (busy := self._working.get(event_id)) is not None:
            await busy.wait()
        if event_id in self._done:
            self._done.move_to_end(event_id)
            yield False
            return
        finished = self._working[event_id] = asyncio.Event()
        try:
            yield True
            self._done[event_id] = None
            while len(self._done) > self.capacity:
                self._done.popitem(last=False)
        finally:
            del self._working[event_id]
            finished.set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._done


class PostgresInboxClaims:
    """Claims in the `cairn_inbox` table (cairn-bus's PostgresInbox), inside one transaction.

    The claim's row is inserted when the body starts and committed when it ends; a failing
    body rolls it back. A replica handling the same event at the same time waits on the row
    lock and then sees the claim taken.
    """

    def __init__(self, pool: Any, consumer: str = "inference") -> None:
        self.pool = pool
        self.consumer = consumer
        self._inbox = PostgresInbox(pool)

    async def migrate(self) -> None:
        """Create the inbox table if it does not exist."""
        await self._inbox.migrate()

    @asynccontextmanager
    async def claim(self, event_id: str) -> AsyncIterator[bool]:
        """As `InboxClaims.claim`; a database outage (also while connecting or committing) raises
        TransientError, so the input is retried rather than dead-lettered and lost."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield await self._inbox.claim(self.consumer, event_id, conn)
        except Exception as exc:
            if is_database_outage(exc):
                raise TransientError(f"inference inbox database unavailable: {exc!r}") from exc
            raise
