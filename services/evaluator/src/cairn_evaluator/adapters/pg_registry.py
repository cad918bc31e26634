"""The model registry in PostgreSQL (`registry_versions`, `registry_promotions`, `registry_aliases`).

The database enforces one production version per model (a partial unique index); a promotion locks
the model's versions, so concurrent promotions of one model apply one after the other.
"""

from __future__ import annotations

from typing import Any

from cairn_bus.postgres import guarded
from cairn_evaluator.domain.errors import VersionNotFoundError
from cairn_evaluator.domain.registry import (
    ModelVersion,
    Promotion,
    PromotionOutcome,
    PromotionRequest,
    plan_promotion,
    promotions_for,
)
from cairn_events import ModelStage

_VERSION_COLUMNS = (
    "name, version, base_model, adapter_uri, dataset_id, dataset_version, job_id, config, metrics, "
    "code_version, registered_at, stage, quantization"
)
_PROMOTION_COLUMNS = (
    "name, version, from_stage, to_stage, promoted_by, reason, promoted_at, event_id, cause_event_id, "
    "evidence_run_id"
)


def _version(row: Any) -> ModelVersion:
    return ModelVersion.model_validate(dict(row))


def _promotion(row: Any) -> Promotion:
    return Promotion(
        name=row["name"],
        version=row["version"],
        from_stage=ModelStage(row["from_stage"]) if row["from_stage"] else None,
        to_stage=ModelStage(row["to_stage"]),
        by=row["promoted_by"],
        reason=row["reason"],
        at=row["promoted_at"],
        event_id=row["event_id"],
        cause_event_id=row["cause_event_id"],
        evidence_run_id=row["evidence_run_id"],
    )


class PostgresRegistry:
    """`Registry` on an asyncpg pool (see `cairn_bus.postgres.create_pool` and `pg_schema.migrate`)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @guarded
    async def register(self, version: ModelVersion) -> bool:
        row = await self.pool.fetchval(
            f"INSERT INTO registry_versions ({_VERSION_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT (name, version) DO NOTHING RETURNING 1",
            version.name,
            version.version,
            version.base_model,
            version.adapter_uri,
            version.dataset_id,
            version.dataset_version,
            version.job_id,
            version.config,
            version.metrics,
            version.code_version,
            version.registered_at,
            version.stage.value,
            version.quantization,
        )
        return row is not None

    @guarded
    async def get(self, name: str, version: int) -> ModelVersion | None:
        row = await self.pool.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM registry_versions WHERE name = $1 AND version = $2",
            name,
            version,
        )
        return _version(row) if row else None

    @guarded
    async def versions(self, name: str) -> list[ModelVersion]:
        rows = await self.pool.fetch(
            f"SELECT {_VERSION_COLUMNS} FROM registry_versions WHERE name = $1 ORDER BY version", name
        )
        return [_version(r) for r in rows]

    @guarded
    async def model_names(self) -> list[str]:
        rows = await self.pool.fetch("SELECT DISTINCT name FROM registry_versions ORDER BY name")
        return [r["name"] for r in rows]

    @guarded
    async def promote(self, request: PromotionRequest) -> PromotionOutcome:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT version, stage FROM registry_versions WHERE name = $1 ORDER BY version FOR UPDATE",
                request.name,
            )
            earlier = await conn.fetch(
                f"SELECT {_PROMOTION_COLUMNS} FROM registry_promotions "
                "WHERE cause_event_id = $1 OR event_id = $1 ORDER BY id",
                request.event_id,
            )
            if earlier:
                return PromotionOutcome(applied=False, promotions=[_promotion(r) for r in earlier])
            stages = {r["version"]: ModelStage(r["stage"]) for r in rows}
            if request.version not in stages:
                raise VersionNotFoundError(f"model {request.name!r} has no version {request.version}")
            promotions = promotions_for(request, plan_promotion(stages, request.version, request.to_stage))
            # archive first: the index allows one production version at every moment
            for p in sorted(promotions, key=lambda p: p.to_stage is ModelStage.PRODUCTION):
                await conn.execute(
                    "UPDATE registry_versions SET stage = $3 WHERE name = $1 AND version = $2",
                    p.name,
                    p.version,
                    p.to_stage.value,
                )
            for p in promotions:
                await conn.execute(
                    f"INSERT INTO registry_promotions ({_PROMOTION_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    p.name,
                    p.version,
                    p.from_stage.value if p.from_stage else None,
                    p.to_stage.value,
                    p.by,
                    p.reason,
                    p.at,
                    p.event_id,
                    p.cause_event_id,
                    p.evidence_run_id,
                )
            return PromotionOutcome(applied=bool(promotions), promotions=promotions)

    @guarded
    async def history(self, name: str) -> list[Promotion]:
        rows = await self.pool.fetch(
            f"SELECT {_PROMOTION_COLUMNS} FROM registry_promotions WHERE name = $1 ORDER BY id", name
        )
        return [_promotion(r) for r in rows]

    @guarded
    async def set_alias(self, name: str, alias: str, version: int, by: str) -> int | None:
        async with self.pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval(
                "SELECT 1 FROM registry_versions WHERE name = $1 AND version = $2", name, version
            )
            if not exists:
                raise VersionNotFoundError(f"model {name!r} has no version {version}")
            previous: int | None = await conn.fetchval(
                "SELECT version FROM registry_aliases WHERE name = $1 AND alias = $2 FOR UPDATE", name, alias
            )
            await conn.execute(
                "INSERT INTO registry_aliases (name, alias, version, set_by) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (name, alias) DO UPDATE SET version = EXCLUDED.version, "
                "set_by = EXCLUDED.set_by, set_at = now()",
                name,
                alias,
                version,
                by,
            )
            return previous

    @guarded
    async def aliases(self, name: str) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT alias, version FROM registry_aliases WHERE name = $1 ORDER BY alias", name
        )
        return {r["alias"]: r["version"] for r in rows}
