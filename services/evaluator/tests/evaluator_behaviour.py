"""Behaviour suites every Registry and RunStore must pass; subclassed per backend (not collected alone).

A backend subclasses `RegistryBehaviour` with a `registry` fixture, `RunStoreBehaviour` with a
`run_store` fixture (whose runs may reference nothing else), each giving a new, empty store.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from cairn_evaluator.domain.errors import VersionNotFoundError
from cairn_evaluator.domain.registry import PromotionRequest, archive_event_id, rollback_target, version_at
from cairn_evaluator.domain.runs import Answer, Run, RunCase, SuiteSpec, request_id_for
from cairn_evaluator.domain.suites import EvalCase, Gate
from cairn_evaluator.ports import Registry, RunStore
from cairn_events import ModelStage, ResponseStatus, SuiteScore

from .conftest import T0, version


def promotion(n: int, to: ModelStage, event_id: str | None = None) -> PromotionRequest:
    return PromotionRequest(
        name="cairn-qa",
        version=n,
        to_stage=to,
        by="ana",
        reason="test",
        event_id=event_id or str(uuid.uuid4()),
        at=T0,
        evidence_run_id="run-1",
    )


async def stages(registry: Registry) -> dict[int, ModelStage]:
    return {v.version: v.stage for v in await registry.versions("cairn-qa")}


class RegistryBehaviour:
    """What every Registry promises."""

    async def test_register_is_idempotent(self, registry: Registry) -> None:
        assert await registry.register(version(1))
        assert not await registry.register(version(1, ModelStage.PRODUCTION))
        stored = await registry.get("cairn-qa", 1)
        assert stored is not None
        assert stored.stage is ModelStage.DEV
        assert await registry.model_names() == ["cairn-qa"]
        assert await registry.get("cairn-qa", 2) is None

    async def test_a_versions_quantization_is_kept(self, registry: Registry) -> None:
        await registry.register(version(1))
        await registry.register(version(2).model_copy(update={"quantization": "int8"}))
        assert [v.quantization for v in await registry.versions("cairn-qa")] == [None, "int8"]

    async def test_one_production_version_promotion_archives_the_previous(self, registry: Registry) -> None:
        for n in (1, 2, 3):
            await registry.register(version(n))
        first = await registry.promote(promotion(1, ModelStage.PRODUCTION))
        assert [(p.version, p.to_stage) for p in first.promotions] == [(1, ModelStage.PRODUCTION)]
        await registry.promote(promotion(2, ModelStage.STAGING))
        request = promotion(2, ModelStage.PRODUCTION)
        outcome = await registry.promote(request)
        assert outcome.applied
        assert [(p.version, p.from_stage, p.to_stage) for p in outcome.promotions] == [
            (2, ModelStage.STAGING, ModelStage.PRODUCTION),
            (1, ModelStage.PRODUCTION, ModelStage.ARCHIVED),
        ]
        assert outcome.promotions[1].event_id == archive_event_id(request.event_id, "cairn-qa", 1)
        assert await stages(registry) == {1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION, 3: ModelStage.DEV}
        production = version_at(await registry.versions("cairn-qa"), ModelStage.PRODUCTION)
        assert production is not None
        assert production.version == 2

    async def test_an_event_id_applies_once(self, registry: Registry) -> None:
        for n in (1, 2):
            await registry.register(version(n))
        await registry.promote(promotion(1, ModelStage.PRODUCTION))
        request = promotion(2, ModelStage.PRODUCTION)
        first = await registry.promote(request)
        await registry.promote(promotion(1, ModelStage.PRODUCTION))  # someone moves it back
        again = await registry.promote(request)  # the old event redelivered
        assert not again.applied
        assert [p.event_id for p in again.promotions] == [p.event_id for p in first.promotions]
        assert (await stages(registry))[1] is ModelStage.PRODUCTION
        archived = await registry.promote(
            promotion(1, ModelStage.ARCHIVED, event_id=first.promotions[1].event_id)
        )
        assert not archived.applied
        assert len(await registry.history("cairn-qa")) == 5

    async def test_promoting_to_the_current_stage_changes_nothing(self, registry: Registry) -> None:
        await registry.register(version(1))
        outcome = await registry.promote(promotion(1, ModelStage.DEV))
        assert (outcome.applied, outcome.promotions) == (False, [])
        assert await registry.history("cairn-qa") == []

    async def test_unknown_version_is_refused(self, registry: Registry) -> None:
        with pytest.raises(VersionNotFoundError):
            await registry.promote(promotion(9, ModelStage.STAGING))
        with pytest.raises(VersionNotFoundError):
            await registry.set_alias("cairn-qa", "champion", 9, "ana")

    async def test_history_gives_the_rollback_target(self, registry: Registry) -> None:
        for n in (1, 2, 3):
            await registry.register(version(n))
        for n in (1, 2, 3):
            await registry.promote(promotion(n, ModelStage.PRODUCTION))
        history = await registry.history("cairn-qa")
        assert [(p.version, p.to_stage) for p in history] == [
            (1, ModelStage.PRODUCTION),
            (2, ModelStage.PRODUCTION),
            (1, ModelStage.ARCHIVED),
            (3, ModelStage.PRODUCTION),
            (2, ModelStage.ARCHIVED),
        ]
        assert history[0].by == "ana"
        assert history[0].evidence_run_id == "run-1"
        assert rollback_target(history, 3) == 2

    async def test_aliases(self, registry: Registry) -> None:
        for n in (1, 2):
            await registry.register(version(n))
        assert await registry.set_alias("cairn-qa", "champion", 1, "ana") is None
        assert await registry.set_alias("cairn-qa", "champion", 2, "ben") == 1
        await registry.set_alias("cairn-qa", "baseline", 1, "ben")
        assert await registry.aliases("cairn-qa") == {"baseline": 1, "champion": 2}


def sample_run(run_id: str = "run0000000000001") -> tuple[Run, list[RunCase]]:
    run = Run(
        run_id=run_id,
        model_name="cairn-qa",
        candidate_version=2,
        baseline_version=1,
        started_at=T0,
        deadline=T0 + timedelta(seconds=900),
        cause_event_id="evt-1",
        suites=[SuiteSpec(name="s", kind="scenario", gate=Gate(metric="pass_rate", min=0.5))],
    )
    case = EvalCase(id="c1", variables={"question": "q"}, expect_any=["x"])
    cases = [
        RunCase(
            run_id=run_id,
            request_id=request_id_for(run_id, 0, side),
            index=0,
            side=side,
            suite="s",
            case=case,
        )
        for side in ("c", "b")
    ]
    return run, cases


class RunStoreBehaviour:
    """What every RunStore promises."""

    async def test_create_once(self, run_store: RunStore) -> None:
        run, cases = sample_run()
        assert await run_store.create(run, cases)
        assert not await run_store.create(run, cases)
        stored = await run_store.get(run.run_id)
        assert stored is not None
        assert (stored.status, stored.sent, stored.suites) == ("running", False, run.suites)
        assert [(c.index, c.side) for c in await run_store.cases(run.run_id)] == [(0, "b"), (0, "c")]
        await run_store.mark_sent(run.run_id)
        stored = await run_store.get(run.run_id)
        assert stored is not None
        assert stored.sent
        assert [r.run_id for r in await run_store.running()] == [run.run_id]

    async def test_a_runs_purpose_is_kept(self, run_store: RunStore) -> None:
        run, cases = sample_run()
        assert run.purpose == "gate"
        compare = run.model_copy(update={"run_id": "run-compare", "purpose": "compare"})
        assert await run_store.create(
            compare,
            [c.model_copy(update={"run_id": "run-compare", "request_id": c.request_id + "x"}) for c in cases],
        )
        assert await run_store.create(run, cases)
        stored = {r.run_id: r.purpose for r in await run_store.runs()}
        assert stored == {run.run_id: "gate", "run-compare": "compare"}

    async def test_first_answer_is_kept(self, run_store: RunStore) -> None:
        run, cases = sample_run()
        await run_store.create(run, cases)
        first = Answer(status=ResponseStatus.COMPLETED, text="x marks", answered_at=T0)
        second = Answer(status=ResponseStatus.FAILED, reason="late", answered_at=T0)
        assert await run_store.record_answer(cases[0].request_id, first) == run.run_id
        assert await run_store.record_answer(cases[0].request_id, second) == run.run_id
        assert await run_store.record_answer("eval-unknown-0-c", first) is None
        stored = {c.side: c.answer for c in await run_store.cases(run.run_id)}
        assert stored == {"c": first, "b": None}

    async def test_facet_keys_are_kept(self, run_store: RunStore) -> None:
        """The prompt an answer resolved, a case's tenant and topic, and a gate's facet rule come back."""
        run, cases = sample_run()
        gate = Gate(metric="pass_rate", max_facet_regression=0.1, min_facet_cases=3)
        run = run.model_copy(update={"suites": [SuiteSpec(name="s", kind="scenario", gate=gate)]})
        case = cases[0].case.model_copy(update={"tenant": "acme", "topic": "generators"})
        cases = [c.model_copy(update={"case": case}) for c in cases]
        await run_store.create(run, cases)
        answer = Answer(status=ResponseStatus.COMPLETED, text="x", answered_at=T0, prompt="qa:3")
        await run_store.record_answer(cases[0].request_id, answer)
        stored = await run_store.cases(run.run_id)
        assert [(c.side, c.answer) for c in stored] == [("b", None), ("c", answer)]
        assert {(c.case.tenant, c.case.topic) for c in stored} == {("acme", "generators")}
        kept = await run_store.get(run.run_id)
        assert kept is not None
        assert kept.suites[0].gate == gate

    async def test_complete_once(self, run_store: RunStore) -> None:
        run, cases = sample_run()
        await run_store.create(run, cases)
        scores = [SuiteScore(suite="s", metric="pass_rate", candidate=1.0, baseline=0.5, passed=True)]
        assert await run_store.complete(run.run_id, scores, True, "PASS", "s3://cairn/r.html", T0)
        assert not await run_store.complete(run.run_id, [], False, "FAIL", None, T0)
        stored = await run_store.get(run.run_id)
        assert stored is not None
        assert (stored.status, stored.passed, stored.scores, stored.verdict, stored.report_uri) == (
            "passed",
            True,
            scores,
            "PASS",
            "s3://cairn/r.html",
        )
        assert stored.completed_at == T0
        assert await run_store.running() == []

    async def test_runs_newest_first(self, run_store: RunStore) -> None:
        older, cases = sample_run("run-a")
        newer = older.model_copy(update={"run_id": "run-b", "started_at": T0 + timedelta(seconds=5)})
        await run_store.create(older, cases)
        await run_store.create(newer, [])
        assert [r.run_id for r in await run_store.runs()] == ["run-b", "run-a"]
        assert [r.run_id for r in await run_store.runs(1)] == ["run-b"]
