"""The ReviewQueue behaviour suite: one set of tests every ReviewQueue implementation must pass.

Not collected by itself. A backend runs it by subclassing `ReviewQueueBehaviour` as a `Test...`
class with a `queue` fixture giving a new, empty queue (`test_safety_review_queue_memory.py`
for the in-memory fake, `test_safety_review_queue_postgres.py` for PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cairn_events import SafetyFinding, Verdict
from cairn_safety.domain.reviews import (
    ReviewAlreadyResolvedError,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStatus,
    review_id_for,
)

T0 = datetime(2025, 3, 4, 9, 15, 22, 532000, tzinfo=UTC)


def review_item(n: int, **changes: Any) -> ReviewItem:
    base = ReviewItem(
        review_id=review_id_for(f"evt-{n}", "input"),
        request_id=f"req-{n}",
        tenant="acme",
        stage="input",
        verdict=Verdict.REVIEW,
        findings=[
            SafetyFinding(check="toxicity", label="toxic", score=0.61, fired=True, detail="classifier x")
        ],
        text=f"text {n}",
        policy="default@1",
        event_id=f"evt-{n}",
        created_at=T0 + timedelta(seconds=n),
    )
    return ReviewItem(**{**base.__dict__, **changes})


class FlakyHandlerError(Exception):
    pass


class ReviewQueueBehaviour:
    queue: Any

    async def test_once_claims_an_event_once_per_consumer(self, queue: Any) -> None:
        async with queue.once("safety.in", "e1") as tx:
            assert tx is not None
        async with queue.once("safety.in", "e1") as tx:
            assert tx is None
        async with queue.once("safety.out", "e1") as tx:
            assert tx is not None

    async def test_writes_commit_with_the_claim(self, queue: Any) -> None:
        item = review_item(1)
        async with queue.once("safety.in", item.event_id) as tx:
            await tx.add(item)
        assert await queue.get(item.review_id) == item
        assert await queue.items() == [item]

    async def test_a_failing_block_keeps_neither_claim_nor_writes(self, queue: Any) -> None:
        item = review_item(2)
        with pytest.raises(FlakyHandlerError):  # noqa: PT012 - the failure happens inside the transaction
            async with queue.once("safety.in", item.event_id) as tx:
                await tx.add(item)
                raise FlakyHandlerError
        assert await queue.get(item.review_id) is None
        async with queue.once("safety.in", item.event_id) as tx:
            assert tx is not None  # claimable again
            await tx.add(item)
        assert await queue.get(item.review_id) == item

    async def test_adding_the_same_item_twice_keeps_the_first(self, queue: Any) -> None:
        item = review_item(3)
        async with queue.once("c", "a") as tx:
            await tx.add(item)
        async with queue.once("c", "b") as tx:
            await tx.add(review_item(3, text="changed"))
        assert (await queue.get(item.review_id)).text == "text 3"

    async def test_items_filter_by_status_and_tenant_oldest_first(self, queue: Any) -> None:
        items = [review_item(5), review_item(4, tenant="beta"), review_item(6)]
        async with queue.once("c", "x") as tx:
            for item in items:
                await tx.add(item)
        assert [i.event_id for i in await queue.items()] == ["evt-4", "evt-5", "evt-6"]
        assert [i.event_id for i in await queue.items(tenant="acme")] == ["evt-5", "evt-6"]
        assert [i.event_id for i in await queue.items(limit=1)] == ["evt-4"]
        await queue.resolve(items[0].review_id, approve=False, resolved_by="ann")
        assert [i.event_id for i in await queue.items()] == ["evt-4", "evt-6"]
        assert [i.event_id for i in await queue.items(ReviewStatus.REJECTED)] == ["evt-5"]
        assert len(await queue.items(None)) == 3

    async def test_resolve_approves_or_rejects_once(self, queue: Any) -> None:
        a, b = review_item(7), review_item(8)
        async with queue.once("c", "y") as tx:
            await tx.add(a)
            await tx.add(b)
        at = T0 + timedelta(hours=1)
        approved = await queue.resolve(a.review_id, approve=True, resolved_by="ann", note="fine", now=at)
        assert (approved.status, approved.resolved_by, approved.resolved_at, approved.note) == (
            ReviewStatus.APPROVED,
            "ann",
            at,
            "fine",
        )
        assert await queue.get(a.review_id) == approved
        rejected = await queue.resolve(b.review_id, approve=False, resolved_by="bob")
        assert rejected.status is ReviewStatus.REJECTED
        with pytest.raises(ReviewAlreadyResolvedError, match="approved by ann"):
            await queue.resolve(a.review_id, approve=False, resolved_by="eve")
        with pytest.raises(ReviewNotFoundError):
            await queue.resolve("rev-nope", approve=True, resolved_by="ann")
        assert (await queue.get(a.review_id)).status is ReviewStatus.APPROVED
