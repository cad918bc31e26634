"""What the evaluator lets other tools read of its tables (the operator CLI's report), so they never
run SQL on them: the tables stay the evaluator's to change."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class OnlineGroundedness:
    """The groundedness scores of live answers, from the evaluator's `online_responses` table."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def groundedness(self, start: datetime, end: datetime) -> list[tuple[datetime, str, float]]:
        """(completed_at, model or `unknown`, groundedness) of every scored answer completed in
        [start, end), oldest first; empty where the evaluator's tables do not exist (it never ran
        against this database)."""
        if await self.pool.fetchval("SELECT to_regclass('online_responses')") is None:
            return []
        rows = await self.pool.fetch(
            "SELECT completed_at, coalesce(model, 'unknown') AS model, groundedness FROM online_responses "
            "WHERE groundedness IS NOT NULL AND completed_at >= $1 AND completed_at < $2 ORDER BY completed_at",
            start,
            end,
        )
        return [(r["completed_at"], r["model"], float(r["groundedness"])) for r in rows]
