"""An in-memory review queue and inbox for unit tests; the same behaviour suite runs against PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

from cairn_safety.domain.reviews import (
    ReviewAlreadyResolvedError,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStatus,
)

__all__ = ["InMemoryReviewQueue"]


class _Transaction:
    def __init__(self) -> None:
        self.added: list[ReviewItem] = []

    async def add(self, item: ReviewItem) -> None:
        self.added.append(item)


class InMemoryReviewQueue:
    """ReviewQueue in dictionaries: writes of a `once` block apply only when the block ends normally."""

    def __init__(self) -> None:
        self.reviews: dict[str, ReviewItem] = {}
        self.claimed: set[tuple[str, str]] = set()

    @asynccontextmanager
    async def once(self, consumer: str, event_id: str) -> AsyncIterator[_Transaction | None]:
        key = (consumer, event_id)
        if key in self.claimed:
            yield None
            return
        self.claimed.add(key)
        tx = _Transaction()
        try:
            yield tx
        except BaseException:
            self.claimed.discard(key)
            raise
        for item in tx.added:
            self.reviews.setdefault(item.review_id, item)

    async def get(self, review_id: str) -> ReviewItem | None:
        return self.reviews.get(review_id)

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
        *,
        approve: bool,
        resolved_by: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> ReviewItem:
        item = self.reviews.get(review_id)
        if item is None:
            raise ReviewNotFoundError(f"no review item {review_id!r}")
        if item.status is not ReviewStatus.PENDING:
            raise ReviewAlreadyResolvedError(
                f"review {review_id} was {item.status.value} by {item.resolved_by} at {item.resolved_at}"
            )
        resolved = replace(
            item,
            status=ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED,
            resolved_by=resolved_by,
            resolved_at=now or datetime.now(UTC),
            note=note,
        )
        self.reviews[review_id] = resolved
        return resolved
