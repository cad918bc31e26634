"""The inboxes inference handles inputs through (cairn-bus's, in memory and in PostgreSQL): what the
handler relies on, for its consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from cairn_bus import Inbox, InMemoryInbox, PostgresInbox, TransientError
from cairn_bus.postgres import create_pool

CONSUMER = "cairn-inference"


class BoomError(Exception):
    pass


async def _fail_inside(inbox: Inbox, event_id: str) -> None:
    async with inbox.once(CONSUMER, event_id) as claim:
        assert claim.first
        raise BoomError


class InboxBehaviour:
    """What the inference handler relies on; subclasses provide the `inbox` fixture."""

    async def test_an_event_is_claimed_once(self, inbox: Inbox) -> None:
        async with inbox.once(CONSUMER, "e1") as first:
            assert first.first is True
        async with inbox.once(CONSUMER, "e1") as again:
            assert again.first is False
        async with inbox.once(CONSUMER, "e2") as other:
            assert other.first is True

    async def test_a_failed_body_releases_its_claim(self, inbox: Inbox) -> None:
        with pytest.raises(BoomError):
            await _fail_inside(inbox, "e3")
        async with inbox.once(CONSUMER, "e3") as retried:
            assert retried.first is True

    async def test_a_concurrent_duplicate_waits_and_then_sees_the_claim_taken(self, inbox: Inbox) -> None:
        entered = asyncio.Event()
        release = asyncio.Event()

        async def first() -> bool:
            async with inbox.once(CONSUMER, "e4") as claimed:
                entered.set()
                await release.wait()
                return claimed.first

        async def duplicate() -> bool:
            await entered.wait()
            async with inbox.once(CONSUMER, "e4") as claimed:
                return claimed.first

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
    def inbox(self) -> InMemoryInbox:
        return InMemoryInbox(capacity=100_000)

    async def test_it_remembers_the_most_recent_ids_only(self) -> None:
        inbox = InMemoryInbox(capacity=2)
        for event_id in ("a", "b", "c"):
            async with inbox.once(CONSUMER, event_id):
                pass
        assert (CONSUMER, "a") not in inbox
        assert (CONSUMER, "b") in inbox
        assert (CONSUMER, "c") in inbox


@pytest.mark.integration
class TestPostgresInbox(InboxBehaviour):
    @pytest.fixture
    async def inbox(self, fresh_database: str) -> AsyncIterator[PostgresInbox]:
        pool = await create_pool(fresh_database, min_size=1, max_size=4)
        inbox = PostgresInbox(pool)
        await inbox.migrate()
        yield inbox
        await pool.close()

    async def test_claims_are_per_consumer(self, inbox: PostgresInbox) -> None:
        async with inbox.once(CONSUMER, "shared") as mine:
            assert mine
        async with inbox.once("someone-else", "shared") as theirs:
            assert theirs


class _DownPool:
    """A pool whose server is shutting down: every connection attempt fails."""

    def acquire(self) -> object:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")


async def test_a_postgres_inbox_outage_is_transient_not_a_dead_letter() -> None:
    inbox = PostgresInbox(_DownPool())
    with pytest.raises(TransientError):
        async with inbox.once(CONSUMER, "evt-1"):
            pass
