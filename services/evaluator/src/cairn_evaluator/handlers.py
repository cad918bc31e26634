"""The evaluator's handlers: the registry follows `cairn.models`; runs follow `cairn.responses`; the
online part observes live `cairn.requests`, `cairn.prompts`, `cairn.responses` and `cairn.feedback`
(a feedback re-checks its request's prompt experiment);
shadow traffic mirrors live `cairn.requests` and pairs the answers of `cairn.responses` and
`cairn.responses.shadow`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cairn_auth.encryption import TENANT_ERASE
from cairn_bus import EventMeta
from cairn_evaluator.completion import check_runs, record_response
from cairn_evaluator.deps import Deps, log
from cairn_evaluator.domain.registry import ModelVersion, PromotionRequest
from cairn_evaluator.evaluation import start_run
from cairn_evaluator.experiments import check_experiment_of
from cairn_evaluator.promotion import publish_promotions
from cairn_evaluator.quality import observe_feedback, observe_prompt, observe_request, observe_response
from cairn_evaluator.shadow import mirror_request, observe_shadow_answer
from cairn_events import (
    AdminActionRecordedV1,
    FeedbackSubmittedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)


async def on_model_registered(event: ModelRegisteredV1, meta: EventMeta, deps: Deps) -> None:
    """Record the version at stage dev (once); a tuned candidate (with a job) starts an evaluation run,
    whose id derives from this event, so a redelivery starts nothing new."""
    version = ModelVersion.from_event(event)
    if await deps.registry.register(version):
        log.info("model version registered", model=version.ref, job_id=event.job_id)
    if event.job_id is None:
        return
    stored = await deps.registry.get(event.model_name, event.version)
    await start_run(deps, stored or version, cause_event_id=meta.id, cause=meta)


async def on_model_promoted(event: ModelPromotedV1, meta: EventMeta, deps: Deps) -> None:
    """Apply a stage change made elsewhere (the CLI, another instance) once per event id; the
    evaluator's own promotions are known by their ids and change nothing. When it archives the
    previous production version, that archival is announced too (with the id every applier derives)."""
    request = PromotionRequest(
        name=event.model_name,
        version=event.version,
        to_stage=event.to_stage,
        by=event.promoted_by,
        reason=event.reason,
        event_id=meta.id,
        at=event.promoted_at,
        evidence_run_id=event.evidence_run_id,
    )
    if await deps.registry.get(event.model_name, event.version) is None:
        log.warning("promotion of an unknown version ignored", model=event.model_name, version=event.version)
        return
    outcome = await deps.registry.promote(request)
    if outcome.applied:
        await publish_promotions(deps, outcome.promotions, cause=meta, skip=meta.id)


async def _observe(deps: Deps, observation: Callable[[], Awaitable[object]]) -> None:
    """Observe live traffic in the background when the service runs an observer, else now (tests, CLI)."""
    if deps.observer is not None:
        deps.observer.submit(observation)
    else:
        await observation()


async def on_response_completed(event: ResponseCompletedV1, meta: EventMeta, deps: Deps) -> None:
    """Record the answer to an evaluation request (the last answer ends its run); any other response
    is live traffic, observed for quality (groundedness, tokens, refusals) off the consumer's path.
    A live or shadow answer whose request was mirrored is filed as one side of its shadow pair.
    A `held` answer is not final: nothing counts it; the request's final answer follows."""
    if event.status is ResponseStatus.HELD:
        return
    await record_response(deps, event, meta)
    if meta.replay_id is None:
        await _observe(deps, lambda: observe_response(deps, event, meta))
    await _observe(deps, lambda: observe_shadow_answer(deps, event, meta))


async def on_request_submitted(event: RequestSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Mirror a live request to the shadows that select it (on the consumer's path, so a crash
    before the commit mirrors it again, with the same ids); observe it for drift (prompt length, the
    question's embedding). Replayed and shadow requests are neither mirrored nor observed."""
    await mirror_request(deps, event, meta)
    if meta.replay_id is None:
        await _observe(deps, lambda: observe_request(deps, event, meta))


async def on_feedback_submitted(event: FeedbackSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep a feedback for the satisfaction summaries and feedback drift; a new feedback on a request
    in a prompt experiment re-checks that experiment (off the consumer's path), which announces a
    significant winner once."""
    if await observe_feedback(deps, event, meta):
        await _observe(deps, lambda: check_experiment_of(deps, event.request_id))


async def on_prompt_rendered(event: PromptRenderedV1, meta: EventMeta, deps: Deps) -> None:
    """Keep the experiment variant the prompt store chose, when it chose one."""
    await observe_prompt(deps, event, meta)


async def on_admin_action(event: AdminActionRecordedV1, meta: EventMeta, deps: Deps) -> None:
    """On `tenant.erase`: forget the embeddings of the tenant's questions (kept for drift), the only
    thing the evaluator derives from a tenant's content. Other admin actions are not its business."""
    if event.action != TENANT_ERASE:
        return
    erased = await deps.online.erase_tenant(event.target)
    log.info("tenant erased", tenant=event.target, embeddings_forgotten=erased)


async def after_batch(deps: Deps) -> None:
    """End overdue runs (failed) after every consumed batch."""
    await check_runs(deps)
