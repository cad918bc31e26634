"""Shadow traffic: live requests mirrored to candidates, both answers scored, the evidence.

The mirror (`mirror_request`, on the consumer's path of `cairn.requests`) publishes a shadow request
for every enabled shadow that selects a live request, with `ce_replayof` = the live event and
`ce_replayid` = `shadow:<id>`: every event of its trail inherits the replay id, so its answer is
published on `cairn.responses.shadow` (cairn-bus routes it there), never on `cairn.responses`.
`observe_shadow_answer` files the live answer and the shadow answer of one request under the live
request id, whichever comes first, scored the way live traffic is (groundedness against the
answer's own citations, refusal, tokens); a `held` answer is not final and is not filed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from cairn_bus import EventMeta
from cairn_embedding.groundedness import score_groundedness
from cairn_evaluator.deps import Deps, log
from cairn_evaluator.domain.errors import ShadowConflictError, ShadowNotFoundError
from cairn_evaluator.domain.runs import EVAL_PREFIX, Run
from cairn_evaluator.domain.shadow import (
    Mirror,
    Shadow,
    ShadowAnswer,
    ShadowSummary,
    Side,
    shadow_id_of,
    shadow_request,
    shadow_scores,
    summarize_shadow,
)
from cairn_evaluator.online.records import EVALUATOR_USER, is_refusal, prompt_name_of
from cairn_events import RequestSubmittedV1, ResponseCompletedV1, ResponseStatus, SuiteScore
from cairn_observability import metrics

__all__ = [
    "ShadowReport",
    "active_shadows",
    "mirror_request",
    "observe_shadow_answer",
    "report_json",
    "shadow_evidence",
    "shadow_report",
    "start_shadow",
    "stop_shadow",
]

# the `cairn_shadow_*` family (cairn_observability's catalog)
MIRRORED = metrics.SHADOW_MIRRORED
ANSWERS = metrics.SHADOW_ANSWERS
PAIRS = metrics.SHADOW_PAIRS
GROUNDEDNESS = metrics.SHADOW_GROUNDEDNESS


async def active_shadows(deps: Deps) -> list[Shadow]:
    """The shadows that are on, read again after `shadow_refresh_s` (or when invalidated)."""
    now = time.monotonic()
    cached = deps.active_shadows
    if cached is None or now - deps.shadows_read_at >= deps.settings.shadow_refresh_s:
        cached = [s for s in await deps.shadows.shadows() if s.enabled]
        deps.active_shadows, deps.shadows_read_at = cached, now
    return cached


def _is_live(event_request_id: str, meta: EventMeta) -> bool:
    return meta.replay_id is None and not event_request_id.startswith(EVAL_PREFIX)


async def mirror_request(deps: Deps, event: RequestSubmittedV1, meta: EventMeta) -> int:
    """Publish the shadow twin of a live request for every shadow that selects it; how many were
    new. Never mirrors a replay or shadow request, nor the evaluator's own. A redelivered live request
    publishes the same twin (same event id) again."""
    if not _is_live(event.request_id, meta) or event.user_id == EVALUATOR_USER:
        return 0
    prompt_name = prompt_name_of(event.prompt)
    new = 0
    for shadow in await active_shadows(deps):
        if not shadow.selects(event.tenant, prompt_name, event.request_id):
            continue
        twin = shadow_request(event, shadow)
        mirror = Mirror(
            shadow_id=shadow.shadow_id,
            request_id=event.request_id,
            shadow_request_id=twin.request_id,
            tenant=event.tenant,
            live_event_id=meta.id,
            submitted_at=event.submitted_at,
            mirrored_at=deps.clock(),
        )
        recorded = await deps.shadows.record_mirror(mirror)
        await deps.publisher.publish(
            twin,
            cause=meta,
            correlation_id=twin.request_id,
            replay_of=meta.id,
            replay_id=shadow.replay_id,
        )
        if recorded:
            new += 1
            MIRRORED.labels(shadow=shadow.shadow_id).inc()
    return new


async def _groundedness(deps: Deps, event: ResponseCompletedV1) -> float | None:
    chunks = [c.text for c in event.citations]
    if event.status is not ResponseStatus.COMPLETED or not event.text or not chunks:
        return None
    embed = None
    if deps.embedder is not None and deps.settings.groundedness_embedder == "minilm":
        embed = deps.embedder.embed_documents
    result = await asyncio.to_thread(
        score_groundedness, event.text, chunks, embed, threshold=deps.settings.groundedness_threshold
    )
    return None if result is None else result.score


async def _file(
    deps: Deps, shadow_id: str, request_id: str, side: Side, event: ResponseCompletedV1, meta: EventMeta
) -> bool:
    answer = ShadowAnswer(
        shadow_id=shadow_id,
        request_id=request_id,
        side=side,
        event_id=meta.id,
        status=event.status,
        refused=is_refusal(event.status, event.verdict),
        groundedness=await _groundedness(deps, event),
        input_tokens=event.usage.input_tokens if event.usage else None,
        output_tokens=event.usage.output_tokens if event.usage else None,
        model=event.model,
        model_version=event.model_version,
        prompt_name=event.prompt_name,
        prompt_version=event.prompt_version,
        completed_at=event.completed_at,
    )
    if not await deps.shadows.record_answer(answer):
        return False
    ANSWERS.labels(shadow=shadow_id, side=side, status=event.status.value).inc()
    if answer.groundedness is not None:
        GROUNDEDNESS.labels(shadow=shadow_id, side=side).observe(answer.groundedness)
    other = "live" if side == "shadow" else "shadow"
    if any(a.side == other for a in await deps.shadows.answers_for(shadow_id, request_id)):
        PAIRS.labels(shadow=shadow_id).inc()
    return True


async def observe_shadow_answer(deps: Deps, event: ResponseCompletedV1, meta: EventMeta) -> int:
    """File a final answer as one side of a shadow pair: a shadow answer under its mirror's live
    request, a live answer under every enabled shadow that selects its request; how many were new.
    A `held` answer is not final (the request is answered again) and is not filed."""
    if event.status is ResponseStatus.HELD:
        return 0
    shadow_id = shadow_id_of(meta.replay_id)
    if shadow_id is not None:
        mirror = await deps.shadows.mirror_for(event.request_id)
        if mirror is None:
            log.warning("shadow answer without its mirror", request_id=event.request_id, shadow=shadow_id)
            return 0
        return int(await _file(deps, mirror.shadow_id, mirror.request_id, "shadow", event, meta))
    if not _is_live(event.request_id, meta):
        return 0
    new = 0
    for shadow in await active_shadows(deps):
        if shadow.selects(event.tenant, event.prompt_name or "", event.request_id):
            new += await _file(deps, shadow.shadow_id, event.request_id, "live", event, meta)
    return new


async def start_shadow(deps: Deps, shadow: Shadow) -> Shadow:
    """Store the shadow and turn it on; a known id keeps its creation and its evidence, and must keep
    its candidate (ShadowConflictError otherwise: a new candidate is a new shadow)."""
    known = await deps.shadows.get_shadow(shadow.shadow_id)
    if known is not None:
        if not known.same_candidate(shadow):
            raise ShadowConflictError(
                f"shadow {shadow.shadow_id!r} mirrors to {known.candidate}; start another shadow for "
                f"{shadow.candidate}"
            )
        shadow = shadow.model_copy(update={"created_by": known.created_by, "created_at": known.created_at})
    shadow = shadow.model_copy(update={"enabled": True})
    await deps.shadows.save_shadow(shadow)
    deps.active_shadows = None
    log.info("shadow started", shadow=shadow.shadow_id, candidate=shadow.candidate, share=shadow.share)
    return shadow


async def stop_shadow(deps: Deps, shadow_id: str, by: str) -> Shadow:
    """Turn the shadow off (its evidence stays). Raises ShadowNotFoundError."""
    known = await deps.shadows.get_shadow(shadow_id)
    if known is None:
        raise ShadowNotFoundError(f"no shadow {shadow_id!r}")
    stopped = known.model_copy(update={"enabled": False, "updated_by": by, "updated_at": deps.clock()})
    await deps.shadows.save_shadow(stopped)
    deps.active_shadows = None
    log.info("shadow stopped", shadow=shadow_id, by=by)
    return stopped


@dataclass(frozen=True)
class ShadowReport:
    """A shadow, what its pairs show, and how its evidence fares at the gate."""

    shadow: Shadow
    summary: ShadowSummary
    gate_passed: bool
    gate_note: str
    scores: list[SuiteScore] = field(default_factory=list)


def _cost_of(deps: Deps) -> Callable[[ShadowAnswer], float] | None:
    from cairn_observability.pricing import load_price_table, price_table_path

    path = price_table_path(deps.settings.price_table)
    if path is None:
        return None

    try:
        table = load_price_table(path)
    except (OSError, ValueError) as exc:
        log.warning("price table not read: shadow reports show no cost", path=str(path), error=repr(exc))
        return None
    return lambda a: table.cost(a.model, a.input_tokens or 0, a.output_tokens or 0)


async def shadow_report(deps: Deps, shadow_id: str) -> ShadowReport:
    """The shadow's evidence so far. Raises ShadowNotFoundError."""
    shadow = await deps.shadows.get_shadow(shadow_id)
    if shadow is None:
        raise ShadowNotFoundError(f"no shadow {shadow_id!r}")
    return await _report(deps, shadow)


async def _report(deps: Deps, shadow: Shadow) -> ShadowReport:
    limit = deps.settings.shadow_report_limit
    mirrors = await deps.shadows.mirrors(shadow.shadow_id, limit)
    mirrored = {m.request_id for m in mirrors}
    # a live answer is filed for every request the shadow selects; one that was never mirrored (in
    # flight when the shadow started) has no twin and does not count
    answers = [a for a in await deps.shadows.answers(shadow.shadow_id, 2 * limit) if a.request_id in mirrored]
    summary = summarize_shadow(answers, mirrors, cost_of=_cost_of(deps))
    s = deps.settings
    scores, note = shadow_scores(
        shadow, summary, min_pairs=s.shadow_gate_min_pairs, max_drop=s.shadow_gate_max_drop
    )
    passed = all(score.passed for score in scores)
    return ShadowReport(shadow, summary, passed, note, scores)


async def shadow_evidence(deps: Deps, run: Run) -> tuple[list[SuiteScore], dict[tuple[str, str], str]]:
    """The shadow evidence for a run's candidate: the scores of every shadow whose candidate model is
    exactly the run's (`cairn-qa:2`), with their notes. With `shadow_gate_min_pairs` set and no such
    shadow, a failing `shadow/pairs` score: the gate asks for evidence that does not exist."""
    s = deps.settings
    mine = [x for x in await deps.shadows.shadows() if x.model == run.candidate_ref]
    if not mine:
        if s.shadow_gate_min_pairs <= 0:
            return [], {}
        missing = SuiteScore(suite="shadow", metric="pairs", candidate=0.0, passed=False)
        return [missing], {("shadow", "pairs"): f"no shadow traffic for {run.candidate_ref}"}
    scores: list[SuiteScore] = []
    notes: dict[tuple[str, str], str] = {}
    for shadow in mine:
        report = await _report(deps, shadow)
        scores += report.scores
        for score in report.scores:
            gated = score.metric in ("pairs", "groundedness") and s.shadow_gate_min_pairs > 0
            notes[(score.suite, score.metric)] = report.gate_note if gated else "reported, not gated"
    return scores, notes


def report_json(report: ShadowReport) -> dict[str, Any]:
    """The report as JSON-ready data (the API's and `cairn eval shadow report --json`'s output)."""
    return {
        "shadow": report.shadow.model_dump(mode="json"),
        "summary": asdict(report.summary),
        "gate": {"passed": report.gate_passed, "note": report.gate_note},
        "scores": [s.model_dump(mode="json") for s in report.scores],
    }
