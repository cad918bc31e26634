"""The review queue in PostgreSQL (`safety_reviews`), and the inbox the handlers claim events in.

With a keyring (by default: when a master key is configured, see `cairn_auth.encryption`), the
columns that carry a tenant's content are sealed under the item's tenant's data key: `text`, `note`,
`edited_text` (`cairn-enc:v1:...` text) and the held answer in `release` (stored as
`{"envelope": {...}, "sealed": "cairn-enc:v1:..."}`: the envelope, ids and trace headers only,
stays clear so a decision still joins the request's trail). `findings` stay clear: checks, labels,
scores and counts, never the text. Reads open them; after the tenant's erasure an item reads
`erased`, its content `[erased]`. Rows written without a keyring are read as they are.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from cairn_auth.encryption import (
    ERASED,
    SEALED_FIELD,
    Keyring,
    MasterKey,
    PostgresTenantKeyStore,
    is_sealed,
)
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


_ENVELOPE = "envelope"
_SEALED_TEXTS = ("text", "note", "edited_text")


def _row(row: Any, opened: dict[str, str | None]) -> ReviewItem:
    """The item of a row, its sealed values replaced by `opened` (token -> plaintext, None: erased)."""
    erased = False

    def clear(value: str | None) -> str | None:
        nonlocal erased
        if value is None or not is_sealed(value) or value not in opened:
            return value
        text = opened[value]
        if text is None:
            erased = True
            return ERASED
        return text

    texts = {name: clear(row[name]) for name in _SEALED_TEXTS}
    stored: dict[str, Any] = row["release"]
    release = stored
    token = stored.get(SEALED_FIELD)
    if is_sealed(token) and token in opened:
        release = {k: v for k, v in stored.items() if k != SEALED_FIELD}
        held = clear(token)
        if held is not None and held != ERASED:
            release = {**json.loads(held), **release}
    return ReviewItem(
        review_id=row["id"],
        request_id=row["request_id"],
        tenant=row["tenant"],
        stage=row["stage"],
        verdict=Verdict(row["verdict"]),
        findings=[SafetyFinding.model_validate(f) for f in row["findings"]],
        text=texts["text"] or "",
        policy=row["policy"],
        event_id=row["event_id"],
        created_at=row["created_at"],
        status=ReviewStatus(row["status"]),
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
        note=texts["note"],
        release=release,
        deadline_at=row["deadline_at"],
        on_deadline=ReviewDecision(row["on_deadline"]),
        edited_text=texts["edited_text"],
        erased=erased,
    )


def _tokens(row: Any) -> list[str]:
    values = [row[name] for name in _SEALED_TEXTS] + [row["release"].get(SEALED_FIELD)]
    return [v for v in values if is_sealed(v)]


class _Sealer:
    """Seals an item's content columns under its tenant's key, and opens rows (no keyring: as they are)."""

    def __init__(self, keyring: Keyring | None) -> None:
        self.keyring = keyring

    async def texts(self, conn: Any, tenant: str, *values: str | None) -> list[str | None]:
        """`values` sealed (None stays None); keys looked up and created on `conn` (in its transaction)."""
        if self.keyring is None:
            return list(values)
        todo = [(tenant, v.encode()) for v in values if v is not None]
        sealed = iter(await self.keyring.seal_many(todo, conn=conn))
        return [None if v is None else next(sealed) for v in values]

    async def release(self, conn: Any, tenant: str, release: dict[str, Any]) -> dict[str, Any]:
        """The release as stored: its envelope clear, the rest (the held answer) sealed."""
        held = {k: v for k, v in release.items() if k != _ENVELOPE}
        if self.keyring is None or not held:
            return release
        kept = {k: v for k, v in release.items() if k == _ENVELOPE}
        document = json.dumps(held, ensure_ascii=False, separators=(",", ":"))
        return {**kept, SEALED_FIELD: await self.keyring.seal(tenant, document.encode(), conn=conn)}

    async def items(self, rows: Sequence[Any], conn: Any = None) -> list[ReviewItem]:
        """The items of `rows`, opened; one key look-up for all of them (on `conn` when given)."""
        tokens = list(dict.fromkeys(t for r in rows for t in _tokens(r)))
        opened: dict[str, str | None] = {}
        if tokens and self.keyring is not None:
            plain = await self.keyring.open_many(tokens, conn=conn)
            opened = {t: None if p is None else p.decode() for t, p in zip(tokens, plain, strict=True)}
        return [_row(r, opened) for r in rows]

    async def save_decision(self, conn: Any, item: ReviewItem) -> None:
        note, edited_text = await self.texts(conn, item.tenant, item.note, item.edited_text)
        await conn.execute(
            "UPDATE safety_reviews SET status = $2, resolved_by = $3, resolved_at = $4, note = $5, "
            "edited_text = $6 WHERE id = $1",
            item.review_id,
            item.status.value,
            item.resolved_by,
            item.resolved_at,
            note,
            edited_text,
        )


class _Transaction:
    """QueueTransaction on one connection inside an open transaction."""

    def __init__(self, conn: Any, sealer: _Sealer) -> None:
        self.conn = conn
        self.sealer = sealer

    async def add(self, item: ReviewItem) -> None:
        text, note, edited_text = await self.sealer.texts(
            self.conn, item.tenant, item.text, item.note, item.edited_text
        )
        release = await self.sealer.release(self.conn, item.tenant, item.release)
        await self.conn.execute(
            f"INSERT INTO safety_reviews ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
            "$12, $13, $14, $15, $16, $17, $18) ON CONFLICT (id) DO NOTHING",
            item.review_id,
            item.request_id,
            item.tenant,
            item.stage,
            item.verdict.value,
            [f.model_dump(mode="json") for f in item.findings],
            text,
            item.policy,
            item.event_id,
            item.status.value,
            item.created_at,
            item.resolved_by,
            item.resolved_at,
            note,
            release,
            item.deadline_at,
            item.on_deadline.value,
            edited_text,
        )


class PostgresReviewQueue:
    """ReviewQueue on an asyncpg pool (`cairn_bus.postgres.create_pool`); the inbox is the bus's
    `cairn_inbox` table, whose claim transaction the queued items join."""

    def __init__(self, pool: Any, keyring: Keyring | Literal["environment"] | None = "environment") -> None:
        self.pool = pool
        self.inbox = PostgresInbox(pool)
        self._keyring = keyring
        self._sealer: _Sealer | None = None

    @property
    def keyring(self) -> Keyring | None:
        """The keyring sealing the items' content: "environment" (the default) builds one on the pool's
        `tenant_keys` when a master key is configured; None stores the content as it is."""
        if self._keyring == "environment":
            master = MasterKey.configured()
            self._keyring = Keyring(master, PostgresTenantKeyStore(self.pool)) if master else None
        return self._keyring

    @property
    def sealer(self) -> _Sealer:
        if self._sealer is None:
            self._sealer = _Sealer(self.keyring)
        return self._sealer

    async def migrate(self) -> None:
        """Create the review, inbox and keyring tables if missing."""
        await migrate(self.pool, MIGRATION_LOCK, DDL, RELEASE_DDL)
        await self.inbox.migrate()
        await PostgresTenantKeyStore(self.pool).migrate()

    @asynccontextmanager
    async def once(self, consumer: str, event_id: str) -> AsyncIterator[_Transaction | None]:
        async with self.inbox.once(consumer, event_id) as claim:
            yield _Transaction(claim.conn, self.sealer) if claim else None

    async def get(self, review_id: str) -> ReviewItem | None:
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM safety_reviews WHERE id = $1", review_id)
        return (await self.sealer.items([row]))[0] if row else None

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
        return await self.sealer.items(rows)

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
            [item] = await self.sealer.items([row], conn)
            if item.status is not ReviewStatus.PENDING:
                raise ReviewAlreadyResolvedError(
                    f"review {review_id} was {item.status.value} by {item.resolved_by} at {item.resolved_at}"
                )
            done = decided(item, decision, resolved_by, note, text, now or datetime.now(UTC))
            await self.sealer.save_decision(conn, done)
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
            done = [at_deadline(item, now) for item in await self.sealer.items(rows, conn)]
            for item in done:
                await self.sealer.save_decision(conn, item)
                await then(item)
            return done
