"""The inbox behaviour suite against the in-memory inbox and the PostgreSQL inbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_bus import InMemoryInbox, PostgresInbox
from cairn_bus.postgres import create_pool

from .inbox_behaviour import BoomError, InboxBehaviour, fail_inside


class TestInMemoryInbox(InboxBehaviour):
    @pytest.fixture
    def inbox(self) -> InMemoryInbox:
        return InMemoryInbox()


async def test_a_bounded_memory_inbox_forgets_the_oldest_claims() -> None:
    inbox = InMemoryInbox(capacity=2)
    for n in range(3):
        await inbox.claim("c", f"e{n}")
    assert inbox.claimed == {("c", "e1"), ("c", "e2")}


@pytest.mark.integration
class TestPostgresInbox(InboxBehaviour):
    @pytest.fixture
    async def inbox(self, fresh_database: str) -> AsyncIterator[PostgresInbox]:
        pool = await create_pool(fresh_database)
        inbox = PostgresInbox(pool)
        await inbox.migrate()
        yield inbox
        await pool.close()

    async def test_the_blocks_own_writes_commit_with_the_claim(self, inbox: PostgresInbox) -> None:
        await inbox.pool.execute("CREATE TABLE notes (id text PRIMARY KEY, body jsonb)")
        async with inbox.once("notes", "evt-9") as claim:
            await claim.conn.execute("INSERT INTO notes VALUES ($1, $2)", "a", {"k": 1})

        async def write(conn: Any) -> None:
            await conn.execute("INSERT INTO notes VALUES ($1, $2)", "b", {"k": 2})

        with pytest.raises(BoomError):
            await fail_inside(inbox, "notes", "evt-10", write)
        rows = await inbox.pool.fetch("SELECT id, body FROM notes ORDER BY id")
        assert [(r["id"], r["body"]) for r in rows] == [("a", {"k": 1})]


@pytest.mark.integration
async def test_services_starting_together_create_the_inbox_once(fresh_database: str) -> None:
    pools = [await create_pool(fresh_database, 1, 1) for _ in range(6)]
    try:
        await asyncio.gather(*(PostgresInbox(p).migrate() for p in pools))
        assert await PostgresInbox(pools[0]).claim("c", "e") is True
    finally:
        for p in pools:
            await p.close()
