"""The inbox: a consumer claims an event id once; later claims of the same id fail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from cairn_bus import InMemoryInbox, PostgresInbox
from cairn_bus.dispatcher import TRANSIENT
from cairn_bus.inbox import INBOX_DDL
from cairn_bus.postgres import is_transient


async def test_the_first_claim_wins_and_every_later_one_fails() -> None:
    inbox = InMemoryInbox()
    assert await inbox.claim("safety", "evt-1") is True
    assert await inbox.claim("safety", "evt-1") is False
    assert await inbox.claim("safety", "evt-1") is False
    assert inbox.claimed == {("safety", "evt-1")}


async def test_claims_are_per_consumer_and_per_event() -> None:
    inbox = InMemoryInbox()
    assert await inbox.claim("safety", "evt-1") is True
    assert await inbox.claim("feedback", "evt-1") is True
    assert await inbox.claim("safety", "evt-2") is True
    assert await inbox.claim("feedback", "evt-1") is False
    assert inbox.claimed == {("safety", "evt-1"), ("feedback", "evt-1"), ("safety", "evt-2")}


class FakeConnection:
    """Answers the inbox's INSERT like PostgreSQL: RETURNING 1 for a new row, nothing for a conflict."""

    def __init__(self) -> None:
        self.rows: set[tuple[str, str]] = set()
        self.statements: list[str] = []

    async def fetchval(self, sql: str, *args: Any) -> int | None:
        self.statements.append(sql)
        key = (args[0], args[1])
        if key in self.rows:
            return None
        self.rows.add(key)
        return 1

    async def execute(self, sql: str, *args: Any) -> None:
        self.statements.append(sql)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConnection]:  # a pool of this one connection
        yield self


async def test_postgres_inbox_claims_through_the_callers_connection_when_given() -> None:
    pool, conn = FakeConnection(), FakeConnection()
    inbox = PostgresInbox(pool)
    assert await inbox.claim("safety", "evt-1", conn) is True
    assert await inbox.claim("safety", "evt-1", conn) is False
    assert pool.statements == []
    assert conn.rows == {("safety", "evt-1")}
    assert "ON CONFLICT DO NOTHING RETURNING 1" in conn.statements[0]


async def test_postgres_inbox_uses_the_pool_without_a_connection() -> None:
    pool = FakeConnection()
    inbox = PostgresInbox(pool)
    await inbox.migrate()
    assert pool.statements == ["SELECT pg_advisory_xact_lock($1)", INBOX_DDL]  # one creator at a time
    assert await inbox.claim("safety", "evt-1") is True
    assert await inbox.claim("safety", "evt-1") is False
    assert pool.rows == {("safety", "evt-1")}


class DownConnection:
    """A connection to a server that is shutting down or was lost."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetchval(self, query: str, *args: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        ConnectionRefusedError(111, "Connect call failed"),
    ],
)
async def test_a_database_outage_is_transient(error: Exception) -> None:
    with pytest.raises(TRANSIENT):
        await PostgresInbox(DownConnection(error)).claim("safety", "evt-1")


async def test_an_error_of_the_claim_itself_is_not_an_outage() -> None:
    error = asyncpg.exceptions.UndefinedTableError('relation "cairn_inbox" does not exist')
    assert not is_transient(error)
    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        await PostgresInbox(DownConnection(error)).claim("safety", "evt-1")
