"""The shadow store in PostgreSQL (`shadow_*` tables, see `pg_schema.SHADOW_DDL`)."""

from __future__ import annotations

from typing import Any

from cairn_bus.postgres import guarded
from cairn_evaluator.domain.shadow import Mirror, Shadow, ShadowAnswer

_SHADOW = (
    "shadow_id, model, prompt, share, tenant, prompt_name, enabled, created_by, created_at, updated_by, "
    "updated_at"
)
_MIRROR = "shadow_id, request_id, shadow_request_id, tenant, live_event_id, submitted_at, mirrored_at"
_ANSWER = (
    "shadow_id, request_id, side, event_id, status, refused, groundedness, input_tokens, output_tokens, "
    "model, model_version, prompt_name, prompt_version, completed_at"
)


def _placeholders(columns: str) -> str:
    return ", ".join(f"${i + 1}" for i in range(len(columns.split(","))))


class PostgresShadowStore:
    """`ShadowStore` on an asyncpg pool (see `cairn_bus.postgres.create_pool` and `pg_schema.migrate`)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @guarded
    async def save_shadow(self, shadow: Shadow) -> None:
        s = shadow
        updates = ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in _SHADOW.split(",")[1:])
        await self.pool.execute(
            f"INSERT INTO shadow_configs ({_SHADOW}) VALUES ({_placeholders(_SHADOW)}) "
            f"ON CONFLICT (shadow_id) DO UPDATE SET {updates}",
            s.shadow_id,
            s.model,
            s.prompt,
            s.share,
            s.tenant,
            s.prompt_name,
            s.enabled,
            s.created_by,
            s.created_at,
            s.updated_by,
            s.updated_at,
        )

    @guarded
    async def get_shadow(self, shadow_id: str) -> Shadow | None:
        row = await self.pool.fetchrow(
            f"SELECT {_SHADOW} FROM shadow_configs WHERE shadow_id = $1", shadow_id
        )
        return None if row is None else Shadow.model_validate(dict(row))

    @guarded
    async def shadows(self) -> list[Shadow]:
        rows = await self.pool.fetch(f"SELECT {_SHADOW} FROM shadow_configs ORDER BY shadow_id")
        return [Shadow.model_validate(dict(r)) for r in rows]

    @guarded
    async def record_mirror(self, mirror: Mirror) -> bool:
        m = mirror
        done = await self.pool.fetchval(
            f"INSERT INTO shadow_mirrors ({_MIRROR}) VALUES ({_placeholders(_MIRROR)}) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            m.shadow_id,
            m.request_id,
            m.shadow_request_id,
            m.tenant,
            m.live_event_id,
            m.submitted_at,
            m.mirrored_at,
        )
        return done is not None

    @guarded
    async def mirror_for(self, shadow_request_id: str) -> Mirror | None:
        row = await self.pool.fetchrow(
            f"SELECT {_MIRROR} FROM shadow_mirrors WHERE shadow_request_id = $1", shadow_request_id
        )
        return None if row is None else Mirror.model_validate(dict(row))

    @guarded
    async def record_answer(self, answer: ShadowAnswer) -> bool:
        a = answer
        done = await self.pool.fetchval(
            f"INSERT INTO shadow_answers ({_ANSWER}) VALUES ({_placeholders(_ANSWER)}) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            a.shadow_id,
            a.request_id,
            a.side,
            a.event_id,
            a.status.value,
            a.refused,
            a.groundedness,
            a.input_tokens,
            a.output_tokens,
            a.model,
            a.model_version,
            a.prompt_name,
            a.prompt_version,
            a.completed_at,
        )
        return done is not None

    @guarded
    async def answers_for(self, shadow_id: str, request_id: str) -> list[ShadowAnswer]:
        rows = await self.pool.fetch(
            f"SELECT {_ANSWER} FROM shadow_answers WHERE shadow_id = $1 AND request_id = $2 ORDER BY side",
            shadow_id,
            request_id,
        )
        return [ShadowAnswer.model_validate(dict(r)) for r in rows]

    @guarded
    async def mirrors(self, shadow_id: str, limit: int) -> list[Mirror]:
        rows = await self.pool.fetch(
            f"SELECT * FROM (SELECT {_MIRROR} FROM shadow_mirrors WHERE shadow_id = $1 "
            "ORDER BY mirrored_at DESC, request_id DESC LIMIT $2) AS m ORDER BY mirrored_at, request_id",
            shadow_id,
            limit,
        )
        return [Mirror.model_validate(dict(r)) for r in rows]

    @guarded
    async def answers(self, shadow_id: str, limit: int) -> list[ShadowAnswer]:
        rows = await self.pool.fetch(
            f"SELECT * FROM (SELECT {_ANSWER} FROM shadow_answers WHERE shadow_id = $1 "
            "ORDER BY completed_at DESC, event_id DESC LIMIT $2) AS a ORDER BY completed_at, event_id",
            shadow_id,
            limit,
        )
        return [ShadowAnswer.model_validate(dict(r)) for r in rows]
