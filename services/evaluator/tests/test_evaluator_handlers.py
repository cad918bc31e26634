"""The handlers with in-memory adapters: registration → requests → answers → verdict → promotion."""

from __future__ import annotations

from cairn_bus import InMemoryPublisher
from cairn_evaluator.adapters.memory import InMemoryRegistry
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.registry import PromotionRequest
from cairn_evaluator.domain.runs import run_id_for
from cairn_evaluator.handlers import (
    after_batch,
    on_model_promoted,
    on_model_registered,
    on_response_completed,
)
from cairn_evaluator.settings import Settings
from cairn_events import (
    EvaluationCompletedV1,
    ModelPromotedV1,
    ModelStage,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)

from .conftest import (
    T0,
    Clock,
    answer_all,
    good_model,
    heldout_rows,
    make_deps,
    meta,
    put_heldout,
    registered,
    requests_of,
)


def published(deps: Deps, cls: type) -> list:  # type: ignore[type-arg]
    assert isinstance(deps.publisher, InMemoryPublisher)
    return list(deps.publisher.events(cls.event_type))


async def with_production(deps: Deps, version: int = 1) -> None:
    """Register `version` (the base, no job) and put it in production."""
    event = registered(version, job_id=None)
    await on_model_registered(event, meta(event), deps)
    await deps.registry.promote(
        PromotionRequest(
            name="cairn-qa",
            version=version,
            to_stage=ModelStage.PRODUCTION,
            by="ana",
            reason="seed",
            event_id=f"seed-{version}",
            at=T0,
        )
    )


async def test_a_base_registration_is_recorded_without_a_run() -> None:
    deps = make_deps()
    event = registered(1, job_id=None)
    await on_model_registered(event, meta(event), deps)
    stored = await deps.registry.get("cairn-qa", 1)
    assert stored is not None
    assert stored.stage is ModelStage.DEV
    assert await deps.runs.runs() == []
    assert requests_of(deps) == []


async def test_a_candidate_run_asks_every_case_of_both_sides() -> None:
    deps = make_deps()
    put_heldout(deps.objects, heldout_rows(2))
    await with_production(deps)
    event = registered(2)
    m = meta(event)
    await on_model_registered(event, m, deps)
    run_id = run_id_for(m.id)
    requests = requests_of(deps)
    # 2 scenario + 2 adversarial + 2 held-out cases, candidate and baseline each
    assert len(requests) == 12
    ids = {r.request_id for r in requests}
    assert f"eval-{run_id}-0-c" in ids
    assert f"eval-{run_id}-5-b" in ids
    assert {r.model for r in requests} == {"cairn-qa:1", "cairn-qa:2"}
    first = requests[0]
    assert (first.user_id, first.tenant, first.params.temperature, first.params.max_tokens) == (
        "cairn-evaluator",
        "default",
        0.0,
        48,
    )
    heldout = [r for r in requests if r.metadata["eval_suite"] == "heldout"]
    assert heldout[0].variables == {"question": "question 0"}
    assert heldout[0].retrieval is not None
    assert heldout[0].retrieval.top_k == 2
    assert all(len(r.request_id) <= 128 for r in requests)
    run = await deps.runs.get(run_id)
    assert run is not None
    assert (run.candidate_version, run.baseline_version, run.status) == (2, 1, "running")


async def test_a_winning_candidate_is_promoted_to_staging() -> None:
    deps = make_deps()
    put_heldout(deps.objects, heldout_rows(2))
    await with_production(deps)
    event = registered(2)
    await on_model_registered(event, meta(event), deps)

    def baseline_is_worse(request: RequestSubmittedV1) -> tuple[ResponseStatus, str | None]:
        status, text = good_model(request)
        if request.model == "cairn-qa:1" and str(request.variables.get("question")).startswith("question"):
            return status, "I am not sure"
        return status, text

    await answer_all(deps, baseline_is_worse)
    [completed] = published(deps, EvaluationCompletedV1)
    assert completed.passed
    assert (completed.candidate_version, completed.baseline_version) == (2, 1)
    f1 = next(s for s in completed.suites if s.suite == "heldout" and s.metric == "token_f1")
    assert f1.candidate == 1.0
    assert f1.baseline is not None
    assert f1.baseline < 1.0
    assert completed.report_uri == f"s3://cairn/eval-reports/{completed.run_id}/report.html"
    assert b"<svg" in deps.objects.get(completed.report_uri)
    [promoted] = published(deps, ModelPromotedV1)
    assert (promoted.version, promoted.from_stage, promoted.to_stage) == (
        2,
        ModelStage.DEV,
        ModelStage.STAGING,
    )
    assert (promoted.promoted_by, promoted.evidence_run_id) == ("cairn-evaluator", completed.run_id)
    assert promoted.adapter_uri == "s3://cairn/adapters/job-1/"
    stored = await deps.registry.get("cairn-qa", 2)
    assert stored is not None
    assert stored.stage is ModelStage.STAGING
    run = await deps.runs.get(completed.run_id)
    assert run is not None
    assert run.status == "passed"


async def test_auto_promotion_to_production_archives_the_previous() -> None:
    deps = make_deps(settings=Settings(auto_promote_production=True), suites=[])
    await with_production(deps)
    event = registered(2, dataset=None)
    await on_model_registered(event, meta(event), deps)  # no suites, no held-out rows: ends at once
    [completed] = published(deps, EvaluationCompletedV1)
    assert completed.passed
    moves = [(e.version, e.to_stage) for e in published(deps, ModelPromotedV1)]
    assert moves == [(2, ModelStage.STAGING), (2, ModelStage.PRODUCTION), (1, ModelStage.ARCHIVED)]
    stages = {v.version: v.stage for v in await deps.registry.versions("cairn-qa")}
    assert stages == {1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION}


async def test_a_candidate_that_does_not_beat_the_baseline_is_not_promoted() -> None:
    deps = make_deps()
    put_heldout(deps.objects, heldout_rows(2))
    await with_production(deps)
    event = registered(2)
    await on_model_registered(event, meta(event), deps)
    await answer_all(deps, good_model)  # both sides answer identically: a tie
    [completed] = published(deps, EvaluationCompletedV1)
    assert not completed.passed
    failed = [(s.suite, s.metric) for s in completed.suites if not s.passed]
    assert failed == [("heldout", "token_f1")]
    assert published(deps, ModelPromotedV1) == []
    stored = await deps.registry.get("cairn-qa", 2)
    assert stored is not None
    assert stored.stage is ModelStage.DEV


async def test_an_adversarial_regression_blocks_promotion() -> None:
    deps = make_deps(suites=None)
    put_heldout(deps.objects, heldout_rows(1))
    await with_production(deps)
    event = registered(2)
    await on_model_registered(event, meta(event), deps)

    def candidate_obeys_injections(request: RequestSubmittedV1) -> tuple[ResponseStatus, str | None]:
        status, text = good_model(request)
        question = str(request.variables.get("question"))
        if request.model == "cairn-qa:2" and "DAN" in question:
            return ResponseStatus.COMPLETED, "Sure, pwned."
        if request.model == "cairn-qa:1" and question.startswith("question"):
            return status, "no idea"  # the candidate wins on held-out
        return status, text

    await answer_all(deps, candidate_obeys_injections)
    [completed] = published(deps, EvaluationCompletedV1)
    assert not completed.passed
    adversarial = next(s for s in completed.suites if s.suite == "adversarial")
    assert (adversarial.candidate, adversarial.baseline, adversarial.passed) == (0.5, 1.0, False)
    assert all(s.passed for s in completed.suites if s.suite != "adversarial")
    assert published(deps, ModelPromotedV1) == []


async def test_redelivery_sends_no_duplicate_requests_or_results() -> None:
    deps = make_deps()
    put_heldout(deps.objects, heldout_rows(1))
    await with_production(deps)
    event = registered(2)
    m = meta(event)
    await on_model_registered(event, m, deps)
    await on_model_registered(event, m, deps)
    assert len(requests_of(deps)) == 10
    assert len(await deps.runs.runs()) == 1
    await answer_all(deps, good_model)
    await answer_all(deps, good_model)  # every response delivered twice
    assert len(published(deps, EvaluationCompletedV1)) == 1
    await after_batch(deps)
    assert len(published(deps, EvaluationCompletedV1)) == 1


async def test_a_run_not_answered_in_time_fails() -> None:
    clock = Clock()
    deps = make_deps(clock=clock, settings=Settings(run_timeout_s=60))
    await with_production(deps)
    event = registered(2, dataset=None)
    await on_model_registered(event, meta(event), deps)
    await answer_all(deps, good_model, side="c")  # the baseline never answers
    await after_batch(deps)
    assert published(deps, EvaluationCompletedV1) == []  # not overdue yet
    clock.advance(61)
    await after_batch(deps)
    [completed] = published(deps, EvaluationCompletedV1)
    assert not completed.passed
    completeness = next(s for s in completed.suites if s.suite == "completeness")
    assert (completeness.candidate, completeness.baseline, completeness.passed) == (1.0, 0.0, False)
    assert published(deps, ModelPromotedV1) == []
    run = await deps.runs.get(completed.run_id)
    assert run is not None
    assert run.status == "failed"
    await answer_all(deps, good_model, side="b")  # late answers change nothing
    assert len(published(deps, EvaluationCompletedV1)) == 1


async def test_foreign_and_unknown_responses_are_ignored() -> None:
    deps = make_deps()
    for request_id in ("req-1", "eval-unknown-0-c"):
        response = ResponseCompletedV1(
            request_id=request_id,
            tenant="default",
            status=ResponseStatus.COMPLETED,
            text="hi",
            completed_at=T0,
        )
        await on_response_completed(response, meta(response), deps)
    assert isinstance(deps.publisher, InMemoryPublisher)
    assert deps.publisher.messages == []


async def test_promotions_made_elsewhere_are_applied_once() -> None:
    deps = make_deps()
    await with_production(deps)
    event = registered(2, job_id=None)
    await on_model_registered(event, meta(event), deps)
    promoted = ModelPromotedV1(
        model_name="cairn-qa",
        version=2,
        from_stage=ModelStage.DEV,
        to_stage=ModelStage.PRODUCTION,
        promoted_by="ana",
        reason="cli",
        promoted_at=T0,
    )
    m = meta(promoted, "/cairn/other")
    await on_model_promoted(promoted, m, deps)
    await on_model_promoted(promoted, m, deps)
    [archived] = published(deps, ModelPromotedV1)  # the archival it caused, announced once
    assert (archived.version, archived.to_stage) == (1, ModelStage.ARCHIVED)
    assert isinstance(deps.publisher, InMemoryPublisher)
    archived_meta = deps.publisher.messages[0].meta
    await on_model_promoted(archived, archived_meta, deps)  # its own event comes back: a no-op
    assert len(published(deps, ModelPromotedV1)) == 1
    history = await deps.registry.history("cairn-qa")
    assert [(p.version, p.to_stage) for p in history][-2:] == [
        (2, ModelStage.PRODUCTION),
        (1, ModelStage.ARCHIVED),
    ]
    assert history[-2].by == "ana"


async def test_a_promotion_of_an_unknown_version_is_ignored() -> None:
    deps = make_deps(registry=InMemoryRegistry())
    promoted = ModelPromotedV1(
        model_name="cairn-qa",
        version=7,
        to_stage=ModelStage.STAGING,
        promoted_by="ana",
        reason="x",
        promoted_at=T0,
    )
    await on_model_promoted(promoted, meta(promoted), deps)
    assert await deps.registry.history("cairn-qa") == []
