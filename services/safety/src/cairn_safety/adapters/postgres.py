"""The review queue in PostgreSQL (`safety_reviews`), and the inbox the handlers claim events in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from cairn_bus import PostgresInbox
from cairn_bus.postgres import migrate
from cairn_events import SafetyFinding, Verdict
from cairn_safety.domain.reviews import (
    ReviewAlreadyResolvedError,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStatus,
)

__all__ = ["DDL", "PostgresReviewQueue"]

DDL = """
CREATE TABLE IF NOT EXISTS safety_reviews (
    id           text        PRIMARY KEY,
    request_id   text        NOT NULL,
    tenant       text        NOT NULL,
    stage        text        NOT NULL CHECK (stage IN ('input', 'output')),
    verdict      text        NOT NULL,
    findings     jsonb       NOT NULL,
    text         text        NOT NULL,
    policy       text        NOT NULL,
    event_id     text        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at   timestamptz NOT NULL,
    resolved_by  text,
    resolved_at  timestamptz,
    note         text
);
CREATE INDEX IF NOT EXISTS safety_reviews_status_created ON safety_reviews (status, created_at);
CREATE INDEX IF NOT EXISTS safety_reviews_request ON safety_reviews (request_id);
"""

MIGRATION_LOCK = "safety_reviews"
"""The advisory lock replicas starting together migrate under, one at a time."""

_COLUMNS = (
    "id, request_id, tenant, stage, verdict, findings, text, policy, event_id, status, created_at, "
    "resolved_by, resolved_at, note"
)


def _row(row: Any) -> ReviewItem:
    return ReviewItem(
        review_id=row["id"],
        request_id=row["request_id"],
        tenant=row["tenant"],
        stage=row["stage"],
        verdict=Verdict(row["verdict"]),
        findings=[SafetyFinding.model_validate(f) for f in row["findings"]],
        text=row["text"],
        policy=row["policy"],
        event_id=row["event_id"],
        created_at=row["created_at"],
        status=ReviewStatus(row["status"]),
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
        note=row["note"],
    )


class _Transaction:
    """QueueTransaction on one connection inside an open transaction."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def add(self, item: ReviewItem) -> None:
        await self.conn.execute(
            f"INSERT INTO safety_reviews ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
            "$12, $13, $14) ON CONFLICT (id) DO NOTHING",
            item.review_id,
            item.request_id,
            item.tenant,
            item.stage,
            item.verdict.value,
            [f.model_dump(mode="json") for f in item.findings],
            item.text,
            item.policy,
            item.event_id,
            item.status.value,
            item.created_at,
            item.resolved_by,
            item.resolved_at,
            item.note,
        )


class PostgresReviewQueue:
    """ReviewQueue on an asyncpg pool (`cairn_bus.postgres.create_pool`); the inbox is the bus's
    `cairn_inbox` table, whose claim transaction the queued items join."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.inbox = PostgresInbox(pool)

    async def migrate(self) -> None:
        """Create the review and inbox tables if missing."""
        await migrate(self.pool, MIGRATION_LOCK, DDL)
        await self.inbox.migrate()

    @asynccontextmanager
    async def once(self, consumer: str, event_id: str) -> AsyncIterator[_Transaction | None]:
        async with self.inbox.once(consumer, event_id) as claim:
            yield _Transaction(claim.conn) if claim else None

    async def get(self, review_id: str) -> ReviewItem | None:
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM safety_reviews WHERE id = $1", review_id)
        return _row(row) if row else None

    async def items(
        self, status: ReviewStatus | None = ReviewStatus.PENDING, tenant: str | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM safety_reviews WHERE ($1::text IS NULL OR status = $1) "
            "AND ($2::text IS NULL OR tenant = $2) ORDER BY created_at, id LIMIT $3",
            status.value if status else None,
            tenant,
            limit,
        )
        return [_row(r) for r in rows]

    async def resolve(
        self,
        review_id: str,
        *,
        approve: bool,
        resolved_by: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> ReviewItem:
        status = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
        row = await self.pool.fetchrow(
            f"UPDATE safety_reviews SET status = $2, resolved_by = $3, resolved_at = $4, note = $5 "
            f"WHERE id = $1 AND status = 'pending' RETURNING {_COLUMNS}",
            review_id,
            status.value,
            resolved_by,
            now or datetime.now(UTC),
            note,
        )
        if row is not None:
            return _row(row)
        existing = await self.get(review_id)
        if existing is None:
            raise ReviewNotFoundError(f"no review item {review_id!r}")
        raise ReviewAlreadyResolvedError(
            f"review {review_id} was {existing.status.value} by {existing.resolved_by} at {existing.resolved_at}"
        )
