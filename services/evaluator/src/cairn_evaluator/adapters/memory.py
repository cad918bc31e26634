"""In-memory registry and run store for unit tests; they pass the same behaviour suites as PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from cairn_evaluator.domain.errors import VersionNotFoundError
from cairn_evaluator.domain.registry import (
    ModelVersion,
    Promotion,
    PromotionOutcome,
    PromotionRequest,
    plan_promotion,
    promotions_for,
)
from cairn_evaluator.domain.runs import Answer, Run, RunCase
from cairn_events import SuiteScore


class InMemoryRegistry:
    """`Registry` in dicts."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, int], ModelVersion] = {}
        self._history: list[Promotion] = []
        self._aliases: dict[tuple[str, str], int] = {}

    async def register(self, version: ModelVersion) -> bool:
        key = (version.name, version.version)
        if key in self._versions:
            return False
        self._versions[key] = version
        return True

    async def get(self, name: str, version: int) -> ModelVersion | None:
        return self._versions.get((name, version))

    async def versions(self, name: str) -> list[ModelVersion]:
        return sorted((v for (n, _), v in self._versions.items() if n == name), key=lambda v: v.version)

    async def model_names(self) -> list[str]:
        return sorted({n for n, _ in self._versions})

    async def promote(self, request: PromotionRequest) -> PromotionOutcome:
        earlier = [p for p in self._history if request.event_id in (p.cause_event_id, p.event_id)]
        if earlier:
            return PromotionOutcome(applied=False, promotions=earlier)
        stages = {v.version: v.stage for v in await self.versions(request.name)}
        if request.version not in stages:
            raise VersionNotFoundError(f"model {request.name!r} has no version {request.version}")
        promotions = promotions_for(request, plan_promotion(stages, request.version, request.to_stage))
        for p in promotions:
            key = (p.name, p.version)
            self._versions[key] = self._versions[key].model_copy(update={"stage": p.to_stage})
        self._history.extend(promotions)
        return PromotionOutcome(applied=bool(promotions), promotions=promotions)

    async def history(self, name: str) -> list[Promotion]:
        return [p for p in self._history if p.name == name]

    async def set_alias(self, name: str, alias: str, version: int, by: str) -> int | None:
        if (name, version) not in self._versions:
            raise VersionNotFoundError(f"model {name!r} has no version {version}")
        previous = self._aliases.get((name, alias))
        self._aliases[(name, alias)] = version
        return previous

    async def aliases(self, name: str) -> dict[str, int]:
        return {a: v for (n, a), v in sorted(self._aliases.items()) if n == name}


class InMemoryRunStore:
    """`RunStore` in dicts."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._cases: dict[str, RunCase] = {}

    async def create(self, run: Run, cases: list[RunCase]) -> bool:
        if run.run_id in self._runs:
            return False
        self._runs[run.run_id] = run
        for case in cases:
            self._cases[case.request_id] = case
        return True

    async def mark_sent(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is not None:
            self._runs[run_id] = run.model_copy(update={"sent": True})

    async def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    async def runs(self, limit: int = 50) -> list[Run]:
        ordered = sorted(self._runs.values(), key=lambda r: (r.started_at, r.run_id), reverse=True)
        return ordered[:limit]

    async def cases(self, run_id: str) -> list[RunCase]:
        mine = [c for c in self._cases.values() if c.run_id == run_id]
        return sorted(mine, key=lambda c: (c.index, c.side))

    async def record_answer(self, request_id: str, answer: Answer) -> str | None:
        case = self._cases.get(request_id)
        if case is None:
            return None
        if case.answer is None:
            self._cases[request_id] = case.model_copy(update={"answer": answer})
        return case.run_id

    async def running(self) -> list[Run]:
        return [r for r in self._runs.values() if r.status == "running"]

    async def complete(
        self,
        run_id: str,
        scores: list[SuiteScore],
        passed: bool,
        verdict: str,
        report_uri: str | None,
        at: datetime,
    ) -> bool:
        run = self._runs.get(run_id)
        if run is None or run.status != "running":
            return False
        self._runs[run_id] = run.model_copy(
            update={
                "status": "passed" if passed else "failed",
                "scores": list(scores),
                "passed": passed,
                "verdict": verdict,
                "report_uri": report_uri,
                "completed_at": at,
            }
        )
        return True
