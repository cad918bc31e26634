"""The online store in PostgreSQL (`online_*` tables, see `pg_schema.ONLINE_DDL`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from cairn_bus.postgres import guarded, rows_affected
from cairn_evaluator.online.conclusions import ExperimentConclusion
from cairn_evaluator.online.records import (
    AlertFiring,
    FeedbackRecord,
    PromptAttribution,
    RequestRecord,
    ResponseRecord,
)

_RESPONSE = (
    "event_id, request_id, tenant, prompt_name, prompt_version, model, model_version, status, refused, "
    "input_tokens, output_tokens, groundedness, completed_at"
)
_REQUEST = "event_id, request_id, tenant, prompt_name, prompt_length, embedding, submitted_at"
_FEEDBACK = "event_id, feedback_id, request_id, tenant, rating, thumbs, submitted_at"
_ATTRIBUTION = "event_id, request_id, tenant, prompt_name, prompt_version, experiment, variant, rendered_at"
_CONCLUSION = "conclusion_id, tenant, prompt_name, experiment, winner, event, concluded_at, published"
_ALERT = "alert_id, key, alert_name, severity, summary, labels, value, raised_at, published"


def _placeholders(columns: str) -> str:
    return ", ".join(f"${i + 1}" for i in range(len(columns.split(","))))


def _window_sql(table: str, columns: str, time_column: str) -> str:
    """The newest `limit` rows in (since, until], returned oldest first."""
    return (
        f"SELECT * FROM (SELECT {columns} FROM {table} WHERE ($1::timestamptz IS NULL OR {time_column} > $1) "
        f"AND {time_column} <= $2 ORDER BY {time_column} DESC, event_id DESC LIMIT $3) AS w "
        f"ORDER BY {time_column}, event_id"
    )


class PostgresOnlineStore:
    """`OnlineStore` on an asyncpg pool (see `cairn_bus.postgres.create_pool` and `pg_schema.migrate`)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def _insert(self, table: str, columns: str, values: Sequence[Any]) -> bool:
        done = await self.pool.fetchval(
            f"INSERT INTO {table} ({columns}) VALUES ({_placeholders(columns)}) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            *values,
        )
        return done is not None

    @guarded
    async def record_response(self, record: ResponseRecord) -> bool:
        r = record
        return await self._insert(
            "online_responses",
            _RESPONSE,
            (
                r.event_id,
                r.request_id,
                r.tenant,
                r.prompt_name,
                r.prompt_version,
                r.model,
                r.model_version,
                r.status.value,
                r.refused,
                r.input_tokens,
                r.output_tokens,
                r.groundedness,
                r.completed_at,
            ),
        )

    @guarded
    async def record_request(self, record: RequestRecord) -> bool:
        r = record
        values = (
            r.event_id,
            r.request_id,
            r.tenant,
            r.prompt_name,
            r.prompt_length,
            r.embedding,
            r.submitted_at,
        )
        return await self._insert("online_requests", _REQUEST, values)

    @guarded
    async def erase_tenant(self, tenant: str) -> int:
        status = await self.pool.execute(
            "UPDATE online_requests SET embedding = NULL WHERE tenant = $1 AND embedding IS NOT NULL",
            tenant,
        )
        return rows_affected(status)

    @guarded
    async def record_feedback(self, record: FeedbackRecord) -> bool:
        f = record
        values = (f.event_id, f.feedback_id, f.request_id, f.tenant, f.rating, f.thumbs, f.submitted_at)
        return await self._insert("online_feedback", _FEEDBACK, values)

    @guarded
    async def record_attribution(self, record: PromptAttribution) -> bool:
        a = record
        values = (
            a.event_id,
            a.request_id,
            a.tenant,
            a.prompt_name,
            a.prompt_version,
            a.experiment,
            a.variant,
            a.rendered_at,
        )
        return await self._insert("online_attributions", _ATTRIBUTION, values)

    @guarded
    async def responses(self, since: datetime | None, until: datetime, limit: int) -> list[ResponseRecord]:
        rows = await self.pool.fetch(
            _window_sql("online_responses", _RESPONSE, "completed_at"), since, until, limit
        )
        return [ResponseRecord.model_validate(dict(r)) for r in rows]

    @guarded
    async def responses_for(self, request_ids: Sequence[str]) -> list[ResponseRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_RESPONSE} FROM online_responses WHERE request_id = ANY($1::text[]) "
            "ORDER BY completed_at, event_id",
            list(request_ids),
        )
        return [ResponseRecord.model_validate(dict(r)) for r in rows]

    @guarded
    async def requests(self, since: datetime | None, until: datetime, limit: int) -> list[RequestRecord]:
        rows = await self.pool.fetch(
            _window_sql("online_requests", _REQUEST, "submitted_at"), since, until, limit
        )
        return [RequestRecord.model_validate(dict(r)) for r in rows]

    @guarded
    async def feedback(self, since: datetime | None, until: datetime, limit: int) -> list[FeedbackRecord]:
        rows = await self.pool.fetch(
            _window_sql("online_feedback", _FEEDBACK, "submitted_at"), since, until, limit
        )
        return [FeedbackRecord.model_validate(dict(r)) for r in rows]

    @guarded
    async def attributions(self, request_ids: Sequence[str]) -> list[PromptAttribution]:
        rows = await self.pool.fetch(
            f"SELECT {_ATTRIBUTION} FROM online_attributions WHERE request_id = ANY($1::text[]) "
            "ORDER BY rendered_at, event_id",
            list(request_ids),
        )
        return [PromptAttribution.model_validate(dict(r)) for r in rows]

    @guarded
    async def experiment_attributions(
        self, tenant: str, prompt_name: str, experiment: str, limit: int
    ) -> list[PromptAttribution]:
        rows = await self.pool.fetch(
            f"SELECT * FROM (SELECT {_ATTRIBUTION} FROM online_attributions WHERE tenant = $1 "
            "AND prompt_name = $2 AND experiment = $3 ORDER BY rendered_at DESC, event_id DESC LIMIT $4) "
            "AS w ORDER BY rendered_at, event_id",
            tenant,
            prompt_name,
            experiment,
            limit,
        )
        return [PromptAttribution.model_validate(dict(r)) for r in rows]

    @guarded
    async def feedback_for(self, request_ids: Sequence[str]) -> list[FeedbackRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_FEEDBACK} FROM online_feedback WHERE request_id = ANY($1::text[]) "
            "ORDER BY submitted_at, event_id",
            list(request_ids),
        )
        return [FeedbackRecord.model_validate(dict(r)) for r in rows]

    @guarded
    async def record_conclusion(self, conclusion: ExperimentConclusion) -> bool:
        c = conclusion
        done = await self.pool.fetchval(
            f"INSERT INTO online_experiment_conclusions ({_CONCLUSION}) VALUES ({_placeholders(_CONCLUSION)}) "
            "ON CONFLICT (conclusion_id) DO NOTHING RETURNING 1",
            c.conclusion_id,
            c.tenant,
            c.prompt_name,
            c.experiment,
            c.winner,
            c.event,
            c.concluded_at,
            False,
        )
        return done is not None

    @guarded
    async def conclusion(self, conclusion_id: str) -> ExperimentConclusion | None:
        row = await self.pool.fetchrow(
            f"SELECT {_CONCLUSION} FROM online_experiment_conclusions WHERE conclusion_id = $1", conclusion_id
        )
        return ExperimentConclusion.model_validate(dict(row)) if row is not None else None

    @guarded
    async def mark_conclusion_published(self, conclusion_id: str) -> None:
        await self.pool.execute(
            "UPDATE online_experiment_conclusions SET published = true WHERE conclusion_id = $1",
            conclusion_id,
        )

    @guarded
    async def fire(self, firing: AlertFiring, cooldown: timedelta) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval("SELECT 1 FROM online_alerts WHERE alert_id = $1", firing.alert_id):
                return False
            claimed = await conn.fetchval(
                "INSERT INTO online_alert_state (key, last_fired_at) VALUES ($1, $2) "
                "ON CONFLICT (key) DO UPDATE SET last_fired_at = EXCLUDED.last_fired_at "
                "WHERE online_alert_state.last_fired_at <= EXCLUDED.last_fired_at - $3::interval "
                "RETURNING 1",
                firing.key,
                firing.raised_at,
                cooldown,
            )
            if claimed is None:
                return False
            f = firing
            await conn.execute(
                f"INSERT INTO online_alerts ({_ALERT}) VALUES ({_placeholders(_ALERT)})",
                f.alert_id,
                f.key,
                f.alert_name,
                f.severity,
                f.summary,
                f.labels,
                f.value,
                f.raised_at,
                False,
            )
            return True

    @guarded
    async def mark_published(self, alert_id: str) -> None:
        await self.pool.execute("UPDATE online_alerts SET published = true WHERE alert_id = $1", alert_id)

    @guarded
    async def unpublished(self) -> list[AlertFiring]:
        rows = await self.pool.fetch(
            f"SELECT {_ALERT} FROM online_alerts WHERE NOT published ORDER BY raised_at, alert_id"
        )
        return [AlertFiring.model_validate(dict(r)) for r in rows]

    @guarded
    async def alerts(self, since: datetime | None, limit: int = 100) -> list[AlertFiring]:
        rows = await self.pool.fetch(
            f"SELECT {_ALERT} FROM online_alerts WHERE $1::timestamptz IS NULL OR raised_at > $1 "
            "ORDER BY raised_at DESC, alert_id DESC LIMIT $2",
            since,
            limit,
        )
        return [AlertFiring.model_validate(dict(r)) for r in rows]
