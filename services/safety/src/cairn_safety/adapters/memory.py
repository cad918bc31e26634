"""An in-memory review queue, on the bus's in-memory inbox, for unit tests; the same behaviour suite
runs against PostgreSQL. It does not encrypt; `erase` gives a tenant's items the form they read in
PostgreSQL once the tenant's key is destroyed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

from cairn_auth.encryption import ERASED
from cairn_bus import InMemoryInbox
from cairn_events import ReviewDecision
from cairn_safety.domain.reviews import (
    ReviewAlreadyResolvedError,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStatus,
    at_deadline,
    decided,
)
from cairn_safety.ports import Announce

__all__ = ["InMemoryReviewQueue"]


class _Transaction:
    def __init__(self) -> None:
        self.added: list[ReviewItem] = []

    async def add(self, item: ReviewItem) -> None:
        self.added.append(item)


class InMemoryReviewQueue:
    """ReviewQueue in dictionaries, its inbox an `InMemoryInbox`: the writes of a `once` block apply,
    with the claim, only when the block ends normally."""

    def __init__(self, inbox: InMemoryInbox | None = None) -> None:
        self.reviews: dict[str, ReviewItem] = {}
        self.inbox = inbox or InMemoryInbox()
        self._deciding = asyncio.Lock()

    @asynccontextmanager
    async def once(self, consumer: str, event_id: str) -> AsyncIterator[_Transaction | None]:
        async with self.inbox.once(consumer, event_id) as claim:
            if not claim:
                yield None
                return
            tx = _Transaction()
            yield tx
            for item in tx.added:
                self.reviews.setdefault(item.review_id, item)

    async def get(self, review_id: str) -> ReviewItem | None:
        return self.reviews.get(review_id)

    def erase(self, tenant: str) -> int:
        """What destroying the tenant's key does to its stored items: text, note and edited text
        `[erased]`, the release down to its envelope. Returns how many items it changed."""
        changed = 0
        for review_id, item in list(self.reviews.items()):
            if item.tenant != tenant or item.erased:
                continue
            envelope = {k: v for k, v in item.release.items() if k == "envelope"}
            self.reviews[review_id] = replace(
                item,
                text=ERASED,
                note=None if item.note is None else ERASED,
                edited_text=None if item.edited_text is None else ERASED,
                release=envelope,
                erased=True,
            )
            changed += 1
        return changed

    async def items(
        self, status: ReviewStatus | None = ReviewStatus.PENDING, tenant: str | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        found = [
            r
            for r in self.reviews.values()
            if (status is None or r.status is status) and (tenant is None or r.tenant == tenant)
        ]
        return sorted(found, key=lambda r: (r.created_at, r.review_id))[:limit]

    async def resolve(
        self,
        review_id: str,
        decision: ReviewDecision,
        *,
        resolved_by: str,
        note: str | None = None,
        text: str | None = None,
        now: datetime | None = None,
        then: Announce | None = None,
    ) -> ReviewItem:
        async with self._deciding:
            item = self.reviews.get(review_id)
            if item is None:
                raise ReviewNotFoundError(f"no review item {review_id!r}")
            if item.status is not ReviewStatus.PENDING:
                raise ReviewAlreadyResolvedError(
                    f"review {review_id} was {item.status.value} by {item.resolved_by} at {item.resolved_at}"
                )
            done = decided(item, decision, resolved_by, note, text, now or datetime.now(UTC))
            if then is not None:
                await then(done)
            self.reviews[review_id] = done
            return done

    async def resolve_overdue(self, now: datetime, then: Announce, limit: int = 100) -> list[ReviewItem]:
        async with self._deciding:
            due = sorted(
                (
                    r
                    for r in self.reviews.values()
                    if r.status is ReviewStatus.PENDING and r.deadline_at is not None and r.deadline_at <= now
                ),
                key=lambda r: (r.deadline_at, r.review_id),
            )[:limit]
            done = [at_deadline(r, now) for r in due]
            for item in done:
                await then(item)
            for item in done:
                self.reviews[item.review_id] = item
            return done
