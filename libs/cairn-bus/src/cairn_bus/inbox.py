"""The inbox: ids of events a consumer has already applied, so a redelivery changes nothing.

A handler that writes state claims the event id in the same transaction as its writes; if the
claim fails the event was applied before and the handler returns without side effects.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

INBOX_DDL = """
CREATE TABLE IF NOT EXISTS cairn_inbox (
    consumer    text        NOT NULL,
    event_id    text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
)
"""


@dataclass(frozen=True)
class Claim:
    """What `Inbox.once` yields: whether this is the first time the event is applied, and the open
    transaction's connection (None in memory) for the handler's own writes.

    Truthy exactly when `first`, so `async with inbox.once(...) as claim: if not claim: return`.
    """

    first: bool
    conn: Any = None

    def __bool__(self) -> bool:
        return self.first


class Inbox(Protocol):
    """Remembers which events a consumer has applied."""

    async def claim(self, consumer: str, event_id: str, conn: Any = None) -> bool:
        """True the first time (consumer, event_id) is claimed, False on every later call.

        With a database connection, the claim joins the caller's open transaction.
        """
        ...

    def once(self, consumer: str, event_id: str) -> AbstractAsyncContextManager[Claim]:
        """A transaction that first claims (consumer, event_id): enter with a `Claim` whose `first`
        is True the first time and False once the event was applied.

        The claim, and every write the block makes through `claim.conn`, commit together when the
        block exits normally; when it raises (a failed publish, a database outage) nothing is kept
        and a redelivery runs the block again. The same event handled twice at once waits for the
        first attempt to end.
        """
        ...


class InMemoryInbox:
    """An inbox in memory: for unit tests, and for services that keep no database (then `capacity`
    bounds how many applied ids it remembers, oldest forgotten first)."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity
        self._done: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._working: dict[tuple[str, str], asyncio.Event] = {}

    @property
    def claimed(self) -> set[tuple[str, str]]:
        """The (consumer, event_id) pairs applied."""
        return set(self._done)

    def __contains__(self, key: object) -> bool:
        return key in self._done

    def forget(self, consumer: str, event_id: str) -> None:
        """Drop a claim (a test simulating a lost inbox row)."""
        self._done.pop((consumer, event_id), None)

    async def claim(self, consumer: str, event_id: str, conn: Any = None) -> bool:
        key = (consumer, event_id)
        if key in self._done:
            return False
        self._remember(key)
        return True

    def _remember(self, key: tuple[str, str]) -> None:
        self._done[key] = None
        if self.capacity is not None:
            while len(self._done) > self.capacity:
                self._done.popitem(last=False)

    @asynccontextmanager
    async def once(self, consumer: str, event_id: str) -> AsyncIterator[Claim]:
        key = (consumer, event_id)
        while (busy := self._working.get(key)) is not None:
            await busy.wait()
        if key in self._done:
            self._done.move_to_end(key)
            yield Claim(False)
            return
        finished = self._working[key] = asyncio.Event()
        try:
            yield Claim(True)
            self._remember(key)
        finally:
            del self._working[key]
            finished.set()


class PostgresInbox:
    """An inbox table in the service's PostgreSQL database (asyncpg connection or pool)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        """Create the inbox table if it does not exist. Services sharing a database start together:
        the creation runs under one advisory lock (a concurrent `CREATE TABLE IF NOT EXISTS` can
        fail with a duplicate type)."""
        from cairn_bus.postgres import migrate

        await migrate(self.pool, "cairn_inbox", INBOX_DDL)

    async def claim(self, consumer: str, event_id: str, conn: Any = None) -> bool:
        """As `Inbox.claim`; a database outage raises TransientError (retried, never dead-lettered)."""
        from cairn_bus.postgres import transient_errors

        target = conn if conn is not None else self.pool
        with transient_errors("inbox database unavailable"):
            row = await target.fetchval(
                "INSERT INTO cairn_inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                consumer,
                event_id,
            )
        return row is not None

    @asynccontextmanager
    async def once(self, consumer: str, event_id: str) -> AsyncIterator[Claim]:
        """As `Inbox.once`: the claim's row and the block's writes share one transaction; a database
        outage (also while connecting or committing) raises TransientError. A replica handling the
        same event at the same time waits on the row until the first transaction ends."""
        from cairn_bus.postgres import transaction

        async with transaction(self.pool, f"{consumer} inbox") as conn:
            yield Claim(await self.claim(consumer, event_id, conn), conn)
