"""Evaluation runs in PostgreSQL (`eval_runs`, `eval_requests`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn_bus.postgres import guarded
from cairn_evaluator.domain.runs import Answer, Run, RunCase
from cairn_evaluator.domain.suites import EvalCase
from cairn_events import SuiteScore

_RUN_COLUMNS = (
    "run_id, model_name, candidate_version, baseline_version, status, started_at, deadline, "
    "cause_event_id, suites, sent, scores, passed, verdict, report_uri, completed_at, purpose"
)
_CASE_COLUMNS = (
    "request_id, run_id, case_index, side, suite, case_data, status, text, reason, answered_at, prompt_ref"
)


def _run(row: Any) -> Run:
    return Run.model_validate(dict(row))


def _case(row: Any) -> RunCase:
    answer = None
    if row["status"] is not None:
        answer = Answer(
            status=row["status"],
            text=row["text"],
            reason=row["reason"],
            answered_at=row["answered_at"],
            prompt=row["prompt_ref"],
        )
    return RunCase(
        run_id=row["run_id"],
        request_id=row["request_id"],
        index=row["case_index"],
        side=row["side"],
        suite=row["suite"],
        case=EvalCase.model_validate(row["case_data"]),
        answer=answer,
    )


class PostgresRunStore:
    """`RunStore` on an asyncpg pool (see `cairn_bus.postgres.create_pool` and `pg_schema.migrate`)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @guarded
    async def create(self, run: Run, cases: list[RunCase]) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            created = await conn.fetchval(
                "INSERT INTO eval_runs (run_id, model_name, candidate_version, baseline_version, status, "
                "started_at, deadline, cause_event_id, suites, purpose) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING 1",
                run.run_id,
                run.model_name,
                run.candidate_version,
                run.baseline_version,
                run.status,
                run.started_at,
                run.deadline,
                run.cause_event_id,
                [s.model_dump(mode="json") for s in run.suites],
                run.purpose,
            )
            if created is None:
                return False
            await conn.executemany(
                "INSERT INTO eval_requests (request_id, run_id, case_index, side, suite, case_data) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (c.request_id, c.run_id, c.index, c.side, c.suite, c.case.model_dump(mode="json"))
                    for c in cases
                ],
            )
            return True

    @guarded
    async def mark_sent(self, run_id: str) -> None:
        await self.pool.execute("UPDATE eval_runs SET sent = true WHERE run_id = $1", run_id)

    @guarded
    async def get(self, run_id: str) -> Run | None:
        row = await self.pool.fetchrow(f"SELECT {_RUN_COLUMNS} FROM eval_runs WHERE run_id = $1", run_id)
        return _run(row) if row else None

    @guarded
    async def runs(self, limit: int = 50) -> list[Run]:
        rows = await self.pool.fetch(
            f"SELECT {_RUN_COLUMNS} FROM eval_runs ORDER BY started_at DESC, run_id DESC LIMIT $1", limit
        )
        return [_run(r) for r in rows]

    @guarded
    async def cases(self, run_id: str) -> list[RunCase]:
        rows = await self.pool.fetch(
            f"SELECT {_CASE_COLUMNS} FROM eval_requests WHERE run_id = $1 ORDER BY case_index, side", run_id
        )
        return [_case(r) for r in rows]

    @guarded
    async def record_answer(self, request_id: str, answer: Answer) -> str | None:
        run_id: str | None = await self.pool.fetchval(
            "WITH answered AS (UPDATE eval_requests SET status = $2, text = $3, reason = $4, answered_at = $5, "
            "prompt_ref = $6 "
            "WHERE request_id = $1 AND status IS NULL RETURNING run_id) "
            "SELECT run_id FROM answered UNION ALL SELECT run_id FROM eval_requests WHERE request_id = $1 "
            "LIMIT 1",
            request_id,
            answer.status.value,
            answer.text,
            answer.reason,
            answer.answered_at,
            answer.prompt,
        )
        return run_id

    @guarded
    async def running(self) -> list[Run]:
        rows = await self.pool.fetch(
            f"SELECT {_RUN_COLUMNS} FROM eval_runs WHERE status = 'running' ORDER BY deadline"
        )
        return [_run(r) for r in rows]

    @guarded
    async def complete(
        self,
        run_id: str,
        scores: list[SuiteScore],
        passed: bool,
        verdict: str,
        report_uri: str | None,
        at: datetime,
    ) -> bool:
        done = await self.pool.fetchval(
            "UPDATE eval_runs SET status = $2, scores = $3, passed = $4, verdict = $5, report_uri = $6, "
            "completed_at = $7 WHERE run_id = $1 AND status = 'running' RETURNING 1",
            run_id,
            "passed" if passed else "failed",
            [s.model_dump(mode="json") for s in scores],
            passed,
            verdict,
            report_uri,
            at,
        )
        return done is not None
