"""Inboxes of handled events: the same behaviour in memory and in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from cairn_bus import TransientError
from cairn_inference.adapters.inbox import MemoryInbox, PostgresInboxClaims
from cairn_inference.ports import InboxClaims


class BoomError(Exception):
    pass


async def _fail_inside(inbox: InboxClaims, event_id: str) -> None:
    async with inbox.claim(event_id) as first:
        assert first
        raise BoomError


class InboxBehaviour:
    """What every InboxClaims promises; subclasses provide the `inbox` fixture."""

    async def test_an_event_is_claimed_once(self, inbox: InboxClaims) -> None:
        async with inbox.claim("e1") as first:
            assert first is True
        async with inbox.claim("e1") as again:
            assert again is False
        async with inbox.claim("e2") as other:
            assert other is True

    async def test_a_failed_body_releases_its_claim(self, inbox: InboxClaims) -> None:
        with pytest.raises(BoomError):
            await _fail_inside(inbox, "e3")
        async with inbox.claim("e3") as retried:
            assert retried is True

    async def test_a_concurrent_duplicate_waits_and_then_sees_the_claim_taken(
        self, inbox: InboxClaims
    ) -> None:
        entered = asyncio.Event()
        release = asyncio.Event()

        async def first() -> bool:
            async with inbox.claim("e4") as claimed:
                entered.set()
                await release.wait()
                return claimed

        async def duplicate() -> bool:
            await entered.wait()
            async with inbox.claim("e4") as claimed:
                return claimed

        one = asyncio.create_task(first())
        two = asyncio.create_task(duplicate())
        await entered.wait()
        await asyncio.sleep(0.05)
        assert not two.done()
        release.set()
        assert await one is True
        assert await two is False


class TestMemoryInbox(InboxBehaviour):
    @pytest.fixture
    def inbox(self) -> MemoryInbox:
        return MemoryInbox()

    async def test_it_remembers_the_most_recent_ids_only(self) -> None:
        inbox = MemoryInbox(capacity=2)
        for event_id in ("a", "b", "c"):
            async with inbox.claim(event_id):
                pass
        assert "a" not in inbox
        assert "b" in inbox
        assert "c" in inbox


@pytest.mark.integration
class TestPostgresInbox(InboxBehaviour):
    @pytest.fixture
    async def inbox(self, fresh_database: str) -> AsyncIterator[PostgresInboxClaims]:
        import asyncpg

        pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=4)
        claims = PostgresInboxClaims(pool, consumer="cairn-inference")
        await claims.migrate()
        yield claims
        await pool.close()

    async def test_claims_are_per_consumer(self, inbox: PostgresInboxClaims) -> None:
        other = PostgresInboxClaims(inbox.pool, consumer="someone-else")
        async with inbox.claim("shared") as mine:
            assert mine
        async with other.claim("shared") as theirs:
            assert theirs


class _DownPool:
    """A pool whose server is shutting down: every connection attempt fails."""

    def acquire(self) -> object:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")


async def test_a_postgres_inbox_outage_is_transient_not_a_dead_letter() -> None:
    claims = PostgresInboxClaims(_DownPool())
    with pytest.raises(TransientError):
        async with claims.claim("evt-1"):
            pass
