"""Jobs and version numbers in PostgreSQL (tables prefixed `tuner_`)."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

from cairn_bus.postgres import guarded, migrate, transaction
from cairn_events import LoraConfig
from cairn_tuner.domain.continual import ProductionVersion
from cairn_tuner.domain.jobs import (
    LEASE_LOST_CANCELLED,
    Job,
    JobState,
    Registration,
    TrainedAdapter,
    lease_lost_message,
)

MIGRATION_LOCK = 0x0CA1_7E57  # pg_advisory_xact_lock key: replicas starting together migrate one by one

DDL = """
CREATE TABLE IF NOT EXISTS tuner_jobs (
    job_id            text             PRIMARY KEY,
    base_model        text             NOT NULL,
    dataset_id        text             NOT NULL,
    dataset_version   integer          NOT NULL,
    config            jsonb            NOT NULL,
    requested_by      text             NOT NULL,
    requested_at      timestamptz      NOT NULL,
    state             text             NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempt           integer          NOT NULL DEFAULT 0,
    step              integer          NOT NULL DEFAULT 0,
    total_steps       integer,
    loss              double precision,
    message           text,
    cancel_requested  boolean          NOT NULL DEFAULT false,
    heartbeat_at      timestamptz,
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    adapter_uri       text,
    metrics           jsonb            NOT NULL DEFAULT '{}',
    model_name        text,
    model_version     integer
);
CREATE INDEX IF NOT EXISTS tuner_jobs_state ON tuner_jobs (state, requested_at);
CREATE TABLE IF NOT EXISTS tuner_model_versions (
    model_name     text         NOT NULL,
    version        integer      NOT NULL CHECK (version >= 1),
    base_model     text         NOT NULL,
    job_id         text         UNIQUE,
    adapter_uri    text,
    registered_at  timestamptz  NOT NULL,
    published      boolean      NOT NULL DEFAULT false,
    PRIMARY KEY (model_name, version)
);
ALTER TABLE tuner_model_versions ADD COLUMN IF NOT EXISTS quantization text NOT NULL DEFAULT '';
DROP INDEX IF EXISTS tuner_model_versions_base;
CREATE UNIQUE INDEX IF NOT EXISTS tuner_model_versions_base_quantization
    ON tuner_model_versions (model_name, base_model, quantization) WHERE job_id IS NULL;
CREATE TABLE IF NOT EXISTS tuner_model_stages (
    model_name   text         NOT NULL,
    version      integer      NOT NULL,
    stage        text         NOT NULL,
    adapter_uri  text,
    promoted_at  timestamptz  NOT NULL,
    PRIMARY KEY (model_name, version)
);
"""


def _job(row: Any) -> Job:
    return Job(
        job_id=row["job_id"],
        base_model=row["base_model"],
        dataset_id=row["dataset_id"],
        dataset_version=row["dataset_version"],
        config=LoraConfig.model_validate(row["config"]),
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        state=JobState(row["state"]),
        attempt=row["attempt"],
        step=row["step"],
        total_steps=row["total_steps"],
        loss=row["loss"],
        message=row["message"],
        cancel_requested=row["cancel_requested"],
        heartbeat_at=row["heartbeat_at"],
        updated_at=row["updated_at"],
        adapter_uri=row["adapter_uri"],
        metrics=dict(row["metrics"]),
        model_name=row["model_name"],
        model_version=row["model_version"],
    )


def _registration(row: Any) -> Registration:
    return Registration(
        model_name=row["model_name"],
        version=row["version"],
        base_model=row["base_model"],
        job_id=row["job_id"],
        adapter_uri=row["adapter_uri"],
        registered_at=row["registered_at"],
        published=row["published"],
        quantization=row["quantization"] or None,
    )


class PostgresJobRepository:
    """JobRepository on an asyncpg pool (`cairn_bus.postgres.create_pool`); a database outage raises
    `cairn_bus.TransientError`."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        """Create the tables and indexes if missing."""
        await migrate(self.pool, MIGRATION_LOCK, DDL)

    @guarded
    async def create(self, job: Job) -> tuple[Job, bool]:
        row = await self.pool.fetchrow(
            "INSERT INTO tuner_jobs (job_id, base_model, dataset_id, dataset_version, config, requested_by, "
            "requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id) DO NOTHING RETURNING *",
            job.job_id,
            job.base_model,
            job.dataset_id,
            job.dataset_version,
            job.config.model_dump(mode="json"),
            job.requested_by,
            job.requested_at,
        )
        if row is not None:
            return _job(row), True
        found = await self.get(job.job_id)
        assert found is not None
        return found, False

    @guarded
    async def get(self, job_id: str) -> Job | None:
        row = await self.pool.fetchrow("SELECT * FROM tuner_jobs WHERE job_id = $1", job_id)
        return None if row is None else _job(row)

    @guarded
    async def list(self, limit: int = 50) -> builtins.list[Job]:
        rows = await self.pool.fetch(
            "SELECT * FROM tuner_jobs ORDER BY requested_at DESC, job_id DESC LIMIT $1", limit
        )
        return [_job(row) for row in rows]

    @guarded
    async def claim_next(self, now: datetime) -> Job | None:
        row = await self.pool.fetchrow(
            "UPDATE tuner_jobs SET state = 'running', attempt = attempt + 1, heartbeat_at = $1, "
            "updated_at = $1 WHERE job_id = (SELECT job_id FROM tuner_jobs WHERE state = 'queued' "
            "ORDER BY requested_at, job_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
            now,
        )
        return None if row is None else _job(row)

    @guarded
    async def heartbeat(
        self, job_id: str, attempt: int, now: datetime, step: int, total_steps: int | None, loss: float | None
    ) -> Job | None:
        row = await self.pool.fetchrow(
            "UPDATE tuner_jobs SET heartbeat_at = $3, updated_at = $3, step = $4, total_steps = $5, loss = $6 "
            "WHERE job_id = $1 AND attempt = $2 AND state = 'running' RETURNING *",
            job_id,
            attempt,
            now,
            step,
            total_steps,
            loss,
        )
        return None if row is None else _job(row)

    @guarded
    async def finish(
        self,
        job_id: str,
        attempt: int,
        state: JobState,
        now: datetime,
        *,
        message: str | None = None,
        adapter: TrainedAdapter | None = None,
        registration: Registration | None = None,
    ) -> Job | None:
        row = await self.pool.fetchrow(
            "UPDATE tuner_jobs SET state = $3, updated_at = $4, message = $5, "
            "adapter_uri = coalesce($6, adapter_uri), metrics = coalesce($7, metrics), "
            "model_name = coalesce($8, model_name), model_version = coalesce($9, model_version) "
            "WHERE job_id = $1 AND attempt = $2 AND state = 'running' RETURNING *",
            job_id,
            attempt,
            state.value,
            now,
            message,
            adapter.adapter_uri if adapter else None,
            dict(adapter.metrics) if adapter else None,
            registration.model_name if registration else None,
            registration.version if registration else None,
        )
        return None if row is None else _job(row)

    @guarded
    async def release(self, job_id: str, attempt: int, now: datetime) -> Job | None:
        row = await self.pool.fetchrow(
            "UPDATE tuner_jobs SET state = 'queued', attempt = attempt - 1, updated_at = $3 "
            "WHERE job_id = $1 AND attempt = $2 AND state = 'running' RETURNING *",
            job_id,
            attempt,
            now,
        )
        return None if row is None else _job(row)

    @guarded
    async def request_cancel(self, job_id: str, now: datetime) -> Job | None:
        row = await self.pool.fetchrow(
            "UPDATE tuner_jobs SET cancel_requested = true, updated_at = $2 "
            "WHERE job_id = $1 AND state IN ('queued', 'running') RETURNING *",
            job_id,
            now,
        )
        return _job(row) if row is not None else await self.get(job_id)

    @guarded
    async def expire_leases(self, now: datetime, lease_s: float, max_attempts: int) -> builtins.list[Job]:
        changed = []
        async with transaction(self.pool, "expire tuner leases") as conn:
            rows = await conn.fetch(
                "SELECT job_id, attempt, cancel_requested FROM tuner_jobs WHERE state = 'running' "
                "AND (heartbeat_at IS NULL OR heartbeat_at < $1) FOR UPDATE SKIP LOCKED",
                now - timedelta(seconds=lease_s),
            )
            for row in rows:
                requeue = row["attempt"] < max_attempts
                if row["cancel_requested"]:  # asked to stop, and its worker is gone: it stopped
                    state, message = "cancelled", LEASE_LOST_CANCELLED
                elif requeue:
                    state, message = "queued", None
                else:
                    state, message = "failed", lease_lost_message(row["attempt"])
                updated = await conn.fetchrow(
                    "UPDATE tuner_jobs SET state = $2, message = $3, updated_at = $4 WHERE job_id = $1 "
                    "RETURNING *",
                    row["job_id"],
                    state,
                    message,
                    now,
                )
                changed.append(_job(updated))
        return changed

    @guarded
    async def allocate_version(
        self,
        model_name: str,
        base_model: str,
        now: datetime,
        *,
        job_id: str | None = None,
        adapter_uri: str | None = None,
        quantization: str | None = None,
    ) -> tuple[Registration, bool]:
        async with transaction(self.pool, "allocate a model version") as conn:
            # one allocation per model name at a time: versions stay dense
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('tuner_model_versions:' || $1))", model_name
            )
            if job_id is not None:
                found = await conn.fetchrow("SELECT * FROM tuner_model_versions WHERE job_id = $1", job_id)
            else:
                found = await conn.fetchrow(
                    "SELECT * FROM tuner_model_versions WHERE model_name = $1 AND base_model = $2 "
                    "AND quantization = $3 AND job_id IS NULL",
                    model_name,
                    base_model,
                    quantization or "",
                )
            if found is not None:
                return _registration(found), False
            row = await conn.fetchrow(
                "INSERT INTO tuner_model_versions (model_name, version, base_model, job_id, adapter_uri, "
                "registered_at, quantization) SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6 "
                "FROM tuner_model_versions WHERE model_name = $1 RETURNING *",
                model_name,
                base_model,
                job_id,
                adapter_uri,
                now,
                quantization or "",
            )
            return _registration(row), True

    @guarded
    async def mark_published(self, model_name: str, version: int) -> None:
        await self.pool.execute(
            "UPDATE tuner_model_versions SET published = true WHERE model_name = $1 AND version = $2",
            model_name,
            version,
        )

    @guarded
    async def record_promotion(
        self, model_name: str, version: int, stage: str, adapter_uri: str | None, promoted_at: datetime
    ) -> None:
        await self.pool.execute(
            "INSERT INTO tuner_model_stages (model_name, version, stage, adapter_uri, promoted_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (model_name, version) DO UPDATE SET stage = "
            "excluded.stage, adapter_uri = excluded.adapter_uri, promoted_at = excluded.promoted_at "
            "WHERE tuner_model_stages.promoted_at <= excluded.promoted_at",
            model_name,
            version,
            stage,
            adapter_uri,
            promoted_at,
        )

    @guarded
    async def production(self, model_name: str) -> ProductionVersion | None:
        row = await self.pool.fetchrow(
            "SELECT s.version, coalesce(s.adapter_uri, v.adapter_uri) AS adapter_uri FROM tuner_model_stages s "
            "LEFT JOIN tuner_model_versions v ON v.model_name = s.model_name AND v.version = s.version "
            "WHERE s.model_name = $1 AND s.stage = 'production' ORDER BY s.promoted_at DESC, s.version DESC "
            "LIMIT 1",
            model_name,
        )
        return ProductionVersion(model_name, row["version"], row["adapter_uri"]) if row else None
