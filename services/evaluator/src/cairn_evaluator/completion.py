"""Ending runs: answers recorded, scores and gates (with the candidate's shadow evidence, when there
is any), the report, `evaluation.completed`, promotions."""

from __future__ import annotations

import asyncio

from cairn_bus import EventMeta, derive_event_id
from cairn_evaluator.deps import Deps, log
from cairn_evaluator.domain.registry import PromotionRequest
from cairn_evaluator.domain.runs import EVAL_PREFIX, Answer, Run, RunCase
from cairn_evaluator.domain.scoring import RunScores, score_run
from cairn_evaluator.promotion import EVALUATOR, promote
from cairn_evaluator.reports.html import render_html
from cairn_evaluator.shadow import shadow_evidence
from cairn_events import (
    EvaluationCompletedV1,
    ModelPromotedV1,
    ModelStage,
    ResponseCompletedV1,
    ResponseStatus,
)


def report_uri_for(bucket: str, run_id: str) -> str:
    """Where a run's HTML report is kept."""
    return f"s3://{bucket}/eval-reports/{run_id}/report.html"


def verdict_of(run: Run, scores: RunScores) -> str:
    """The run's outcome in one line; a failed facet slice comes with both scores and case counts."""
    failed = [
        f"{s.suite}/{s.metric}"
        + (f" ({scores.notes.get((s.suite, s.metric), '')})" if s.metric.endswith("}") else "")
        for s in scores.scores
        if not s.passed
    ]
    if not failed:
        return f"PASS: {run.candidate_ref} meets every gate" + (
            f" against {run.baseline_ref}" if run.baseline_ref else " (no baseline)"
        )
    return f"FAIL: {run.candidate_ref} misses {', '.join(failed)}"


async def record_response(deps: Deps, event: ResponseCompletedV1, meta: EventMeta) -> None:
    """Keep the answer to one of the evaluator's requests and end its run when it was the last; a
    `held` answer is not final (the request is answered again once its review is resolved)."""
    if not event.request_id.startswith(EVAL_PREFIX) or event.status is ResponseStatus.HELD:
        return
    prompt = (
        f"{event.prompt_name}:{event.prompt_version}" if event.prompt_name and event.prompt_version else None
    )
    answer = Answer(
        status=event.status, text=event.text, reason=event.reason, answered_at=deps.clock(), prompt=prompt
    )
    run_id = await deps.runs.record_answer(event.request_id, answer)
    if run_id is None:
        return
    await finish_if_complete(deps, run_id, meta)


async def finish_if_complete(deps: Deps, run_id: str, cause: EventMeta | None) -> bool:
    """End the run when every request is answered; whether it ended now."""
    run = await deps.runs.get(run_id)
    if run is None or run.status != "running" or not run.sent:
        return False
    cases = await deps.runs.cases(run_id)
    if any(c.answer is None for c in cases):
        return False
    return await finish(deps, run, cases, cause)


async def check_runs(deps: Deps) -> int:
    """End every running run that is overdue (failed: unanswered requests) or fully answered;
    how many ended. Runs after every consumed batch and periodically."""
    ended = 0
    now = deps.clock()
    for run in await deps.runs.running():
        cases = await deps.runs.cases(run.run_id)
        complete = run.sent and all(c.answer is not None for c in cases)
        if (complete or now >= run.deadline) and await finish(deps, run, cases, None):
            ended += 1
    return ended


async def finish(deps: Deps, run: Run, cases: list[RunCase], cause: EventMeta | None) -> bool:
    """Score the run, store the report, publish `evaluation.completed` and, when every gate passed
    in a `gate` run, the promotions; then mark it ended. Ids derive from the run, so finishing twice (a crash before
    the run was marked) publishes the same events again. False when it had ended already."""
    async with deps.finishing:
        current = await deps.runs.get(run.run_id)
        if current is None or current.status != "running":
            return False
        scores = score_run(run, cases)
        evidence, notes = await shadow_evidence(deps, run)
        scores.scores.extend(evidence)
        scores.notes.update(notes)
        completed_at = deps.clock()
        verdict = verdict_of(run, scores)
        uri = report_uri_for(deps.settings.s3_bucket, run.run_id)
        html = render_html(run, scores, verdict)
        await asyncio.to_thread(deps.objects.put, uri, html.encode(), "text/html; charset=utf-8")
        event = EvaluationCompletedV1(
            run_id=run.run_id,
            model_name=run.model_name,
            candidate_version=run.candidate_version,
            baseline_version=run.baseline_version,
            suites=scores.scores,
            passed=scores.passed,
            report_uri=uri,
            completed_at=completed_at,
        )
        await deps.publisher.publish(
            event, cause=cause, event_id=derive_event_id(run.cause_event_id, event.event_type, run.run_id)
        )
        if scores.passed and run.purpose == "gate":  # a comparison's run never promotes
            await _promote_candidate(deps, run, cause)
        ended = await deps.runs.complete(run.run_id, scores.scores, scores.passed, verdict, uri, completed_at)
        log.info("evaluation run ended", run_id=run.run_id, passed=scores.passed, verdict=verdict)
        return ended


async def _promote_candidate(deps: Deps, run: Run, cause: EventMeta | None) -> None:
    stages = [ModelStage.STAGING]
    if deps.settings.auto_promote_production:
        stages.append(ModelStage.PRODUCTION)
    for stage in stages:
        request = PromotionRequest(
            name=run.model_name,
            version=run.candidate_version,
            to_stage=stage,
            by=EVALUATOR,
            reason=f"passed evaluation run {run.run_id}"
            + (f" against version {run.baseline_version}" if run.baseline_version else ""),
            event_id=derive_event_id(run.cause_event_id, ModelPromotedV1.event_type, f"{run.run_id}:{stage}"),
            at=deps.clock(),
            evidence_run_id=run.run_id,
        )
        await promote(deps, request, cause=cause)
