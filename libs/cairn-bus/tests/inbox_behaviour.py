"""What every inbox promises, run against memory and PostgreSQL (the fake cannot drift)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cairn_bus.inbox import Claim


class BoomError(Exception):
    """A handler failure inside the claimed block."""


async def fail_inside(inbox: Any, consumer: str, event_id: str, write: Any = None) -> None:
    """Enter `inbox.once` as a first claim, write (when given) through its connection, then fail."""
    async with inbox.once(consumer, event_id) as claim:
        assert claim.first
        if write is not None:
            await write(claim.conn)
        raise BoomError


class InboxBehaviour:
    """Subclasses provide the `inbox` fixture (`Inbox` with `once`)."""

    async def test_the_first_claim_wins_and_every_later_one_fails(self, inbox: Any) -> None:
        assert await inbox.claim("safety", "evt-1") is True
        assert await inbox.claim("safety", "evt-1") is False
        assert await inbox.claim("feedback", "evt-1") is True

    async def test_once_enters_first_then_never_again(self, inbox: Any) -> None:
        async with inbox.once("safety", "evt-1") as claim:
            assert isinstance(claim, Claim)
            assert claim.first
            assert bool(claim)
        async with inbox.once("safety", "evt-1") as again:
            assert not again.first
            assert not again
        async with inbox.once("feedback", "evt-1") as other:
            assert other.first

    async def test_a_failed_block_keeps_no_claim(self, inbox: Any) -> None:
        with pytest.raises(BoomError):
            await fail_inside(inbox, "safety", "evt-2")
        async with inbox.once("safety", "evt-2") as retry:
            assert retry.first

    async def test_the_same_event_at_once_is_applied_once(self, inbox: Any) -> None:
        applied: list[int] = []

        async def handle(n: int) -> None:
            async with inbox.once("safety", "evt-3") as claim:
                if claim:
                    await asyncio.sleep(0.05)
                    applied.append(n)

        await asyncio.gather(handle(1), handle(2))
        assert len(applied) == 1

    async def test_the_claim_is_claimed_after_the_block(self, inbox: Any) -> None:
        async with inbox.once("safety", "evt-4"):
            pass
        assert await inbox.claim("safety", "evt-4") is False
