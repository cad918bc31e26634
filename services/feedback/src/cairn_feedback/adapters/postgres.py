"""The Repository in PostgreSQL (asyncpg): one table per consumed event kind, immutable dataset versions.

With a keyring (by default: when a master key is configured, see `cairn_auth.encryption`), every
stored event payload (requests, screened inputs, answers, feedback: the whole event, nothing queries
inside it) is sealed under its tenant's data key, `{"sealed": "cairn-enc:v1:..."}`, and opened when
read; after the tenant's erasure its events read as never stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import astuple
from datetime import datetime
from typing import Any, Literal

from cairn_auth.encryption import Keyring, MasterKey, PostgresTenantKeyStore
from cairn_bus.postgres import migrate, transaction, transient_errors
from cairn_events import FeedbackSubmittedV1, InputScreenedV1, RequestSubmittedV1, ResponseCompletedV1
from cairn_events.artifacts import DatasetManifest
from cairn_feedback.domain.records import (
    DatasetSummary,
    DatasetVersion,
    RequestTrail,
    RowProvenance,
    answered_by,
    check_made,
)

MIGRATION_LOCK = 0x0CA1_FEED  # pg_advisory_xact_lock key: replicas starting together migrate one by one

_EVENT_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    request_id  text        PRIMARY KEY,
    event_id    text        NOT NULL,
    at          timestamptz NOT NULL,
    payload     jsonb       NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);
"""
DDL = (
    "".join(
        _EVENT_TABLE.format(name=n)
        for n in (
            "feedback_requests",
            "feedback_screenings",
            "feedback_responses",
            "feedback_shadow_responses",
        )
    )
    + """
ALTER TABLE feedback_responses ADD COLUMN IF NOT EXISTS answered_by text;
ALTER TABLE feedback_shadow_responses ADD COLUMN IF NOT EXISTS answered_by text;
CREATE INDEX IF NOT EXISTS feedback_responses_answered_by ON feedback_responses (answered_by);
CREATE INDEX IF NOT EXISTS feedback_shadow_responses_answered_by ON feedback_shadow_responses (answered_by);
CREATE TABLE IF NOT EXISTS feedback_records (
    feedback_id   text        PRIMARY KEY,
    request_id    text        NOT NULL,
    event_id      text        NOT NULL,
    submitted_at  timestamptz NOT NULL,
    payload       jsonb       NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS feedback_records_request ON feedback_records (request_id);
CREATE TABLE IF NOT EXISTS feedback_dataset_versions (
    dataset_id    text        NOT NULL,
    version       integer     NOT NULL CHECK (version >= 1),
    uri           text        NOT NULL,
    manifest_uri  text        NOT NULL,
    manifest      jsonb       NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, version)
);
CREATE TABLE IF NOT EXISTS feedback_dataset_rows (
    dataset_id      text    NOT NULL,
    version         integer NOT NULL,
    position        integer NOT NULL,
    row_id          text    NOT NULL,
    request_id      text    NOT NULL,
    feedback_id     text,
    prompt_name     text    NOT NULL,
    prompt_version  integer NOT NULL,
    source          text    NOT NULL CHECK (source IN ('corrected', 'rated', 'teacher')),
    split           text    NOT NULL CHECK (split IN ('train', 'heldout')),
    PRIMARY KEY (dataset_id, version, position),
    FOREIGN KEY (dataset_id, version) REFERENCES feedback_dataset_versions (dataset_id, version)
);
DO $$
BEGIN  -- tables made before teacher rows: no feedback id, and the source `teacher`
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint WHERE conname = 'feedback_dataset_rows_source_check'
        AND pg_get_constraintdef(oid) LIKE '%teacher%'
    ) THEN
        ALTER TABLE feedback_dataset_rows ALTER COLUMN feedback_id DROP NOT NULL;
        ALTER TABLE feedback_dataset_rows DROP CONSTRAINT IF EXISTS feedback_dataset_rows_source_check;
        ALTER TABLE feedback_dataset_rows ADD CONSTRAINT feedback_dataset_rows_source_check
            CHECK (source IN ('corrected', 'rated', 'teacher'));
    END IF;
END;
$$;
CREATE OR REPLACE FUNCTION feedback_datasets_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'dataset versions are immutable (% version %)', OLD.dataset_id, OLD.version;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER feedback_dataset_versions_immutable
    BEFORE UPDATE OR DELETE ON feedback_dataset_versions
    FOR EACH ROW EXECUTE FUNCTION feedback_datasets_immutable();
CREATE OR REPLACE TRIGGER feedback_dataset_rows_immutable
    BEFORE UPDATE OR DELETE ON feedback_dataset_rows
    FOR EACH ROW EXECUTE FUNCTION feedback_datasets_immutable();
"""
)


def _upsert(table: str, *extra: str) -> str:
    """Keep the latest event per request id; `extra` columns follow the payload ($5, ...)."""
    columns = ", ".join(("request_id", "event_id", "at", "payload", *extra))
    values = ", ".join(f"${i}" for i in range(1, 5 + len(extra)))
    updates = "".join(f"{c} = EXCLUDED.{c}, " for c in extra)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({values}) "
        f"ON CONFLICT (request_id) DO UPDATE SET event_id = EXCLUDED.event_id, at = EXCLUDED.at, "
        f"payload = EXCLUDED.payload, {updates}stored_at = now() "
        f"WHERE (EXCLUDED.at, EXCLUDED.event_id) > ({table}.at, {table}.event_id)"
    )


_ROW_COLUMNS = "row_id, request_id, feedback_id, prompt_name, prompt_version, source, split"


class PostgresRepository:
    """Repository in the service's PostgreSQL database (tables prefixed `feedback_`), on an asyncpg pool
    (`cairn_bus.postgres.create_pool`); a database outage raises `cairn_bus.TransientError`."""

    def __init__(self, pool: Any, keyring: Keyring | Literal["environment"] | None = "environment") -> None:
        self.pool = pool
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring | None:
        """The keyring sealing payloads: "environment" (the default) builds one on the pool's
        `tenant_keys` when a master key is configured; None stores payloads as they are."""
        if self._keyring == "environment":
            master = MasterKey.configured()
            self._keyring = Keyring(master, PostgresTenantKeyStore(self.pool)) if master else None
        return self._keyring

    async def migrate(self) -> None:
        """Create the tables if they do not exist (safe to run concurrently and repeatedly)."""
        await migrate(self.pool, MIGRATION_LOCK, DDL)
        await PostgresTenantKeyStore(self.pool).migrate()

    async def _sealed(self, tenant: str, payload: Any) -> Any:
        return payload if self.keyring is None else await self.keyring.seal_json(tenant, payload)

    async def _opened(self, payloads: list[Any]) -> list[Any]:
        """Payloads as stored, opened; None for an erased tenant's."""
        return payloads if self.keyring is None else await self.keyring.open_json_many(payloads)

    async def _put(self, table: str, request_id: str, event_id: str, at: datetime, payload: Any) -> None:
        payload = await self._sealed(payload["tenant"], payload)
        with transient_errors():
            await self.pool.execute(_upsert(table), request_id, event_id, at, payload)

    async def save_request(self, event: RequestSubmittedV1, event_id: str) -> None:
        await self._put(
            "feedback_requests", event.request_id, event_id, event.submitted_at, event.model_dump(mode="json")
        )

    async def save_screening(self, event: InputScreenedV1, event_id: str) -> None:
        await self._put(
            "feedback_screenings",
            event.request_id,
            event_id,
            event.screened_at,
            event.model_dump(mode="json"),
        )

    async def save_response(self, event: ResponseCompletedV1, event_id: str, *, shadow: bool = False) -> None:
        table = "feedback_shadow_responses" if shadow else "feedback_responses"
        payload = await self._sealed(event.tenant, event.model_dump(mode="json"))
        with transient_errors():
            await self.pool.execute(
                _upsert(table, "answered_by"),
                event.request_id,
                event_id,
                event.completed_at,
                payload,
                answered_by(event),
            )

    async def save_feedback(self, event: FeedbackSubmittedV1, event_id: str) -> bool:
        payload = await self._sealed(event.tenant, event.model_dump(mode="json"))
        with transient_errors():
            stored = await self.pool.fetchval(
                "INSERT INTO feedback_records (feedback_id, request_id, event_id, submitted_at, payload) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (feedback_id) DO NOTHING RETURNING 1",
                event.feedback_id,
                event.request_id,
                event_id,
                event.submitted_at,
                payload,
            )
        return stored is not None

    async def _trails(self, conn: Any, request_ids: list[str]) -> list[RequestTrail]:
        parts: dict[str, dict[str, Any]] = {rid: {} for rid in request_ids}
        for table, kind in (
            ("feedback_requests", "request"),
            ("feedback_screenings", "screening"),
            ("feedback_responses", "response"),
            ("feedback_shadow_responses", "shadow_response"),
        ):
            rows = await conn.fetch(
                f"SELECT request_id, payload FROM {table} WHERE request_id = ANY($1::text[])", request_ids
            )
            for row, payload in zip(rows, await self._opened([r["payload"] for r in rows]), strict=True):
                if payload is not None:  # None: the tenant was erased
                    parts[row["request_id"]][kind] = payload
        feedback: dict[str, list[FeedbackSubmittedV1]] = {rid: [] for rid in request_ids}
        rows = await conn.fetch(
            "SELECT request_id, payload FROM feedback_records WHERE request_id = ANY($1::text[]) "
            "ORDER BY submitted_at, feedback_id",
            request_ids,
        )
        for row, payload in zip(rows, await self._opened([r["payload"] for r in rows]), strict=True):
            if payload is not None:
                feedback[row["request_id"]].append(FeedbackSubmittedV1.model_validate(payload))
        out = []
        for rid in request_ids:
            p = parts[rid]
            out.append(
                RequestTrail(
                    request_id=rid,
                    request=RequestSubmittedV1.model_validate(p["request"]) if "request" in p else None,
                    screening=InputScreenedV1.model_validate(p["screening"]) if "screening" in p else None,
                    response=ResponseCompletedV1.model_validate(p["response"]) if "response" in p else None,
                    feedback=tuple(feedback[rid]),
                    shadow_response=ResponseCompletedV1.model_validate(p["shadow_response"])
                    if "shadow_response" in p
                    else None,
                )
            )
        return out

    async def trail(self, request_id: str) -> RequestTrail:
        with transient_errors():
            async with self.pool.acquire() as conn:
                [found] = await self._trails(conn, [request_id])
        return found

    async def trails_with_feedback(self) -> list[RequestTrail]:
        with transient_errors():
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                ids = await conn.fetch("SELECT DISTINCT request_id FROM feedback_records ORDER BY request_id")
                return await self._trails(conn, [r["request_id"] for r in ids])

    async def trails_answered_by(self, model: str) -> list[RequestTrail]:
        with transient_errors():
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                ids = await conn.fetch(
                    "SELECT request_id FROM feedback_responses WHERE answered_by = $1 OR answered_by IS NULL "
                    "UNION SELECT request_id FROM feedback_shadow_responses WHERE answered_by = $1 "
                    "ORDER BY request_id",
                    model,
                )
                return await self._trails(conn, [r["request_id"] for r in ids])

    async def add_version(
        self, dataset_id: str, make: Callable[[int], Awaitable[DatasetVersion]]
    ) -> DatasetVersion:
        async with transaction(self.pool, "record a dataset version") as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('feedback_dataset:' || $1, 0))", dataset_id
            )
            latest = await conn.fetchval(
                "SELECT coalesce(max(version), 0) FROM feedback_dataset_versions WHERE dataset_id = $1",
                dataset_id,
            )
            made = check_made(dataset_id, latest + 1, await make(latest + 1))
            await conn.execute(
                "INSERT INTO feedback_dataset_versions (dataset_id, version, uri, manifest_uri, manifest) "
                "VALUES ($1, $2, $3, $4, $5)",
                dataset_id,
                made.version,
                made.uri,
                made.manifest_uri,
                made.manifest.model_dump(mode="json"),
            )
            await conn.executemany(
                f"INSERT INTO feedback_dataset_rows (dataset_id, version, position, {_ROW_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                [(dataset_id, made.version, i, *astuple(r)) for i, r in enumerate(made.rows)],
            )
        return made

    async def _load(self, conn: Any, row: Any) -> DatasetVersion:
        rows = await conn.fetch(
            f"SELECT {_ROW_COLUMNS} FROM feedback_dataset_rows WHERE dataset_id = $1 AND version = $2 "
            "ORDER BY position",
            row["dataset_id"],
            row["version"],
        )
        return DatasetVersion(
            dataset_id=row["dataset_id"],
            version=row["version"],
            uri=row["uri"],
            manifest_uri=row["manifest_uri"],
            manifest=DatasetManifest.model_validate(row["manifest"]),
            rows=tuple(RowProvenance(**dict(r)) for r in rows),
        )

    async def version(self, dataset_id: str, version: int | None = None) -> DatasetVersion | None:
        with transient_errors():
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT * FROM feedback_dataset_versions WHERE dataset_id = $1 "
                    "AND ($2::integer IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
                    dataset_id,
                    version,
                )
                return None if row is None else await self._load(conn, row)

    async def versions(self, dataset_id: str) -> list[DatasetVersion]:
        with transient_errors():
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT * FROM feedback_dataset_versions WHERE dataset_id = $1 ORDER BY version",
                    dataset_id,
                )
                return [await self._load(conn, row) for row in rows]

    async def datasets(self) -> list[DatasetSummary]:
        with transient_errors():
            rows = await self.pool.fetch(
                "SELECT DISTINCT ON (dataset_id) dataset_id, version, manifest, "
                "count(*) OVER (PARTITION BY dataset_id) AS versions "
                "FROM feedback_dataset_versions ORDER BY dataset_id, version DESC"
            )
        return [
            DatasetSummary(
                dataset_id=r["dataset_id"],
                versions=r["versions"],
                latest_version=r["version"],
                latest_rows=r["manifest"]["row_count"],
                latest_created_at=r["manifest"]["created_at"],
            )
            for r in rows
        ]
