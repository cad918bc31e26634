"""The ReviewQueue behaviour suite: one set of tests every ReviewQueue implementation must pass.

Not collected by itself. A backend runs it by subclassing `ReviewQueueBehaviour` as a `Test...`
class with a `queue` fixture giving a new, empty queue (`test_safety_review_queue_memory.py`
for the in-memory fake, `test_safety_review_queue_postgres.py` for PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cairn_auth.encryption import ERASED
from cairn_events import ReviewDecision, SafetyFinding, Verdict
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

    async def erase_tenant(self, queue: Any, tenant: str) -> None:
        raise NotImplementedError

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
        await queue.resolve(items[0].review_id, ReviewDecision.REJECT, resolved_by="ann")
        assert [i.event_id for i in await queue.items()] == ["evt-4", "evt-6"]
        assert [i.event_id for i in await queue.items(ReviewStatus.REJECTED)] == ["evt-5"]
        assert len(await queue.items(None)) == 3

    async def test_resolve_decides_once(self, queue: Any) -> None:
        a, b, c = review_item(7), review_item(8), review_item(9)
        async with queue.once("c", "y") as tx:
            for item in (a, b, c):
                await tx.add(item)
        at = T0 + timedelta(hours=1)
        approved = await queue.resolve(
            a.review_id, ReviewDecision.APPROVE, resolved_by="ann", note="fine", now=at
        )
        assert (approved.status, approved.resolved_by, approved.resolved_at, approved.note) == (
            ReviewStatus.APPROVED,
            "ann",
            at,
            "fine",
        )
        assert approved.decision is ReviewDecision.APPROVE
        assert not approved.by_deadline
        assert await queue.get(a.review_id) == approved
        rejected = await queue.resolve(b.review_id, ReviewDecision.REJECT, resolved_by="bob")
        assert rejected.status is ReviewStatus.REJECTED
        edited = await queue.resolve(
            c.review_id, ReviewDecision.EDIT, resolved_by="cy", text="Refunds take 5 days."
        )
        assert (edited.status, edited.edited_text) == (ReviewStatus.EDITED, "Refunds take 5 days.")
        assert await queue.get(c.review_id) == edited
        with pytest.raises(ReviewAlreadyResolvedError, match="approved by ann"):
            await queue.resolve(a.review_id, ReviewDecision.REJECT, resolved_by="eve")
        with pytest.raises(ReviewNotFoundError):
            await queue.resolve("rev-nope", ReviewDecision.APPROVE, resolved_by="ann")
        assert (await queue.get(a.review_id)).status is ReviewStatus.APPROVED
        assert [i.event_id for i in await queue.items(ReviewStatus.EDITED)] == ["evt-9"]

    async def test_an_edit_needs_text(self, queue: Any) -> None:
        item = review_item(10)
        async with queue.once("c", "z") as tx:
            await tx.add(item)
        with pytest.raises(ValueError, match="corrected text"):
            await queue.resolve(item.review_id, ReviewDecision.EDIT, resolved_by="ann", text="  ")
        assert (await queue.get(item.review_id)).status is ReviewStatus.PENDING

    async def test_the_release_and_deadline_are_kept(self, queue: Any) -> None:
        release = {
            "response": {"text": "held answer", "citations": [{"chunk_id": "d#1"}]},
            "envelope": {"a": 1},
        }
        item = review_item(
            11, release=release, deadline_at=T0 + timedelta(hours=1), on_deadline=ReviewDecision.APPROVE
        )
        async with queue.once("c", "r") as tx:
            await tx.add(item)
        assert await queue.get(item.review_id) == item

    async def test_a_failing_announcement_keeps_the_item_pending(self, queue: Any) -> None:
        item = review_item(12)
        async with queue.once("c", "f") as tx:
            await tx.add(item)
        seen: list[ReviewItem] = []

        async def broker_down(decided: ReviewItem) -> None:
            seen.append(decided)
            raise FlakyHandlerError

        with pytest.raises(FlakyHandlerError):
            await queue.resolve(item.review_id, ReviewDecision.APPROVE, resolved_by="ann", then=broker_down)
        assert [s.status for s in seen] == [ReviewStatus.APPROVED]  # announced as decided...
        assert (await queue.get(item.review_id)).status is ReviewStatus.PENDING  # ...but not kept
        announced: list[ReviewItem] = []

        async def announce(decided: ReviewItem) -> None:
            announced.append(decided)

        done = await queue.resolve(item.review_id, ReviewDecision.REJECT, resolved_by="bob", then=announce)
        assert announced == [done]
        assert await queue.get(item.review_id) == done

    async def test_overdue_items_take_their_policys_default_once(self, queue: Any) -> None:
        soon = review_item(13, deadline_at=T0 + timedelta(minutes=5))
        sooner = review_item(14, deadline_at=T0 + timedelta(minutes=1), on_deadline=ReviewDecision.APPROVE)
        later = review_item(15, deadline_at=T0 + timedelta(hours=2))
        never = review_item(16)
        decided_first = review_item(17, deadline_at=T0)
        async with queue.once("c", "d") as tx:
            for item in (soon, sooner, later, never, decided_first):
                await tx.add(item)
        await queue.resolve(decided_first.review_id, ReviewDecision.APPROVE, resolved_by="ann")
        announced: list[ReviewItem] = []

        async def announce(item: ReviewItem) -> None:
            announced.append(item)

        now = T0 + timedelta(minutes=10)
        done = await queue.resolve_overdue(now, announce)
        assert [i.review_id for i in done] == [sooner.review_id, soon.review_id]  # oldest deadline first
        assert announced == done
        assert [(i.status, i.resolved_by, i.resolved_at, i.by_deadline) for i in done] == [
            (ReviewStatus.APPROVED, "deadline", now, True),
            (ReviewStatus.REJECTED, "deadline", now, True),
        ]
        assert done[1].note == "no decision by the deadline; policy default@1 defaults to reject"
        assert await queue.get(soon.review_id) == done[1]
        assert await queue.resolve_overdue(now, announce) == []  # decided once
        assert (await queue.get(later.review_id)).status is ReviewStatus.PENDING
        assert (await queue.get(never.review_id)).status is ReviewStatus.PENDING
        assert (await queue.get(decided_first.review_id)).resolved_by == "ann"
        with pytest.raises(ReviewAlreadyResolvedError, match="by deadline"):
            await queue.resolve(soon.review_id, ReviewDecision.APPROVE, resolved_by="ann")

    async def test_a_failing_sweep_keeps_every_item_of_its_batch_pending(self, queue: Any) -> None:
        a = review_item(18, deadline_at=T0)
        b = review_item(19, deadline_at=T0)
        async with queue.once("c", "s") as tx:
            await tx.add(a)
            await tx.add(b)

        async def second_fails(item: ReviewItem) -> None:
            if item.review_id == max(a.review_id, b.review_id):
                raise FlakyHandlerError

        with pytest.raises(FlakyHandlerError):
            await queue.resolve_overdue(T0 + timedelta(seconds=1), second_fails)
        assert {i.review_id for i in await queue.items()} == {a.review_id, b.review_id}

        async def announce(item: ReviewItem) -> None:
            pass

        done = await queue.resolve_overdue(T0 + timedelta(seconds=1), announce)
        assert {i.review_id for i in done} == {a.review_id, b.review_id}
        assert await queue.items() == []

    async def test_an_erased_tenants_items_read_erased_and_can_still_be_decided(self, queue: Any) -> None:
        envelope = {"correlation_id": "corr-1", "traceparent": None}
        release = {"response": {"text": "held answer"}, "envelope": envelope}
        held = review_item(20, release=release, deadline_at=T0, on_deadline=ReviewDecision.APPROVE)
        decided_before = review_item(21, release=release)
        other = review_item(22, tenant="beta", release=release)
        async with queue.once("c", "e") as tx:
            for item in (held, decided_before, other):
                await tx.add(item)
        await queue.resolve(
            decided_before.review_id, ReviewDecision.EDIT, resolved_by="ann", note="why", text="Fixed."
        )
        await self.erase_tenant(queue, "acme")
        gone = await queue.get(held.review_id)
        assert (gone.text, gone.release, gone.erased, gone.note) == (
            ERASED,
            {"envelope": envelope},
            True,
            None,
        )
        assert (gone.findings, gone.deadline_at, gone.status) == (held.findings, T0, ReviewStatus.PENDING)
        before = await queue.get(decided_before.review_id)
        assert (before.text, before.note, before.edited_text, before.erased) == (ERASED, ERASED, ERASED, True)
        assert await queue.get(other.review_id) == other  # another tenant's are untouched
        listed = await queue.items(None)
        assert [(i.review_id, i.erased) for i in listed] == [
            (held.review_id, True),
            (decided_before.review_id, True),
            (other.review_id, False),
        ]
        # a decision after the erasure is kept (its note readable), the item stays erased
        approved = await queue.resolve(held.review_id, ReviewDecision.APPROVE, resolved_by="bob", note="ok")
        assert (approved.status, approved.note, approved.text, approved.erased) == (
            ReviewStatus.APPROVED,
            "ok",
            ERASED,
            True,
        )
        assert await queue.get(held.review_id) == approved

    async def test_the_deadline_decides_an_erased_tenants_items(self, queue: Any) -> None:
        item = review_item(23, deadline_at=T0, release={"screened": {"messages": []}})
        async with queue.once("c", "g") as tx:
            await tx.add(item)
        await self.erase_tenant(queue, "acme")
        announced: list[ReviewItem] = []

        async def announce(decided: ReviewItem) -> None:
            announced.append(decided)

        [done] = await queue.resolve_overdue(T0 + timedelta(seconds=1), announce)
        assert announced == [done]
        assert (done.status, done.erased, done.text, done.release) == (
            ReviewStatus.REJECTED,
            True,
            ERASED,
            {},
        )
        assert await queue.get(item.review_id) == done
