"""The review queue in PostgreSQL (`safety_reviews`), and the inbox the handlers claim events in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from cairn_bus import PostgresInbox
from cairn_bus.postgres import migrate, transaction
from cairn_events import ReviewDecision, SafetyFinding, Verdict
from cairn_safety.domain.reviews import (
    ReviewAlreadyResolvedError,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStatus,
    at_deadline,
    decided,
)
from cairn_safety.ports import Announce

__all__ = ["DDL", "RELEASE_DDL", "PostgresReviewQueue"]

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

RELEASE_DDL = """
ALTER TABLE safety_reviews ADD COLUMN IF NOT EXISTS release jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE safety_reviews ADD COLUMN IF NOT EXISTS deadline_at timestamptz;
ALTER TABLE safety_reviews ADD COLUMN IF NOT EXISTS on_deadline text NOT NULL DEFAULT 'reject'
    CHECK (on_deadline IN ('approve', 'reject'));
ALTER TABLE safety_reviews ADD COLUMN IF NOT EXISTS edited_text text;
ALTER TABLE safety_reviews DROP CONSTRAINT IF EXISTS safety_reviews_status_check;
ALTER TABLE safety_reviews ADD CONSTRAINT safety_reviews_status_check
    CHECK (status IN ('pending', 'approved', 'edited', 'rejected'));
CREATE INDEX IF NOT EXISTS safety_reviews_pending_deadline ON safety_reviews (deadline_at)
    WHERE status = 'pending';
"""
"""The second migration: what a release needs, the deadline and its default, the edited text."""

MIGRATION_LOCK = "safety_reviews"
"""The advisory lock replicas starting together migrate under, one at a time."""

_COLUMNS = (
    "id, request_id, tenant, stage, verdict, findings, text, policy, event_id, status, created_at, "
    "resolved_by, resolved_at, note, release, deadline_at, on_deadline, edited_text"
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
        release=row["release"],
        deadline_at=row["deadline_at"],
        on_deadline=ReviewDecision(row["on_deadline"]),
        edited_text=row["edited_text"],
    )


async def _save_decision(conn: Any, item: ReviewItem) -> None:
    await conn.execute(
        "UPDATE safety_reviews SET status = $2, resolved_by = $3, resolved_at = $4, note = $5, edited_text = $6 "
        "WHERE id = $1",
        item.review_id,
        item.status.value,
        item.resolved_by,
        item.resolved_at,
        item.note,
        item.edited_text,
    )


class _Transaction:
    """QueueTransaction on one connection inside an open transaction."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def add(self, item: ReviewItem) -> None:
        await self.conn.execute(
            f"INSERT INTO safety_reviews ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
            "$12, $13, $14, $15, $16, $17, $18) ON CONFLICT (id) DO NOTHING",
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
            item.release,
            item.deadline_at,
            item.on_deadline.value,
            item.edited_text,
        )


class PostgresReviewQueue:
    """ReviewQueue on an asyncpg pool (`cairn_bus.postgres.create_pool`); the inbox is the bus's
    `cairn_inbox` table, whose claim transaction the queued items join."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.inbox = PostgresInbox(pool)

    async def migrate(self) -> None:
        """Create the review and inbox tables if missing."""
        await migrate(self.pool, MIGRATION_LOCK, DDL, RELEASE_DDL)
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
        decision: ReviewDecision,
        *,
        resolved_by: str,
        note: str | None = None,
        text: str | None = None,
        now: datetime | None = None,
        then: Announce | None = None,
    ) -> ReviewItem:
        async with transaction(self.pool, "decide a review") as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM safety_reviews WHERE id = $1 FOR UPDATE", review_id
            )
            if row is None:
                raise ReviewNotFoundError(f"no review item {review_id!r}")
            item = _row(row)
            if item.status is not ReviewStatus.PENDING:
                raise ReviewAlreadyResolvedError(
                    f"review {review_id} was {item.status.value} by {item.resolved_by} at {item.resolved_at}"
                )
            done = decided(item, decision, resolved_by, note, text, now or datetime.now(UTC))
            await _save_decision(conn, done)
            if then is not None:
                await then(done)
            return done

    async def resolve_overdue(self, now: datetime, then: Announce, limit: int = 100) -> list[ReviewItem]:
        async with transaction(self.pool, "decide overdue reviews") as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM safety_reviews WHERE status = 'pending' AND deadline_at <= $1 "
                "ORDER BY deadline_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                limit,
            )
            done = [at_deadline(_row(r), now) for r in rows]
            for item in done:
                await _save_decision(conn, item)
                await then(item)
            return done
