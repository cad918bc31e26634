"""The online part: live responses, requests, feedback and rendered prompts observed; drift checked
against a reference window (alerts on `cairn.alerts`); quality summaries per prompt, model or variant.

Live traffic is everything but the evaluator's own: request ids starting `eval-`, user `cairn-evaluator`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cairn_bus import EventMeta, derive_event_id
from cairn_embedding.groundedness import Embed, score_groundedness
from cairn_evaluator.deps import Deps, log
from cairn_evaluator.domain.runs import EVAL_PREFIX
from cairn_evaluator.online.records import (
    EVALUATOR_USER,
    AlertFiring,
    FeedbackRecord,
    PromptAttribution,
    RequestRecord,
    ResponseRecord,
    is_refusal,
    model_label,
    prompt_name_of,
    prompt_text_length,
    question_of,
    sampled,
)
from cairn_evaluator.online.signals import (
    AlertSpec,
    ScopeDrift,
    Thresholds,
    WindowSamples,
    alerts_for,
    compare,
)
from cairn_evaluator.online.summary import GroupBy, QualityRow, summarize
from cairn_evaluator.online.windows import Window, split_windows
from cairn_events import (
    AlertRaisedV1,
    FeedbackSubmittedV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_observability import metrics

__all__ = [
    "DriftReport",
    "check_drift",
    "observe_feedback",
    "observe_prompt",
    "observe_request",
    "observe_response",
    "quality_summary",
    "recent_alerts",
]

Scope = tuple[str, str]
"""(tenant, prompt name): drift is checked per scope."""
NO_PROMPT = "-"


def _groundedness_embed(deps: Deps) -> Embed | None:
    if deps.embedder is None or deps.settings.groundedness_embedder != "minilm":
        return None
    return deps.embedder.embed_documents


async def observe_response(deps: Deps, event: ResponseCompletedV1, meta: EventMeta) -> bool:
    """Record a live response (sampled answers with citations scored for groundedness); whether it
    was new. Evaluation answers are not live traffic; a `held` answer is not final (neither an
    answer nor a refusal): the request's final answer is the one recorded."""
    if event.request_id.startswith(EVAL_PREFIX) or event.status is ResponseStatus.HELD:
        return False
    score: float | None = None
    chunks = [c.text for c in event.citations]
    if (
        event.status is ResponseStatus.COMPLETED
        and event.text
        and chunks
        and sampled(event.request_id, deps.settings.groundedness_sample_rate)
    ):
        result = await asyncio.to_thread(
            score_groundedness,
            event.text,
            chunks,
            _groundedness_embed(deps),
            threshold=deps.settings.groundedness_threshold,
        )
        score = result.score if result is not None else None
    record = ResponseRecord(
        event_id=meta.id,
        request_id=event.request_id,
        tenant=event.tenant,
        prompt_name=event.prompt_name,
        prompt_version=event.prompt_version,
        model=event.model,
        model_version=event.model_version,
        status=event.status,
        refused=is_refusal(event.status, event.verdict),
        input_tokens=event.usage.input_tokens if event.usage else None,
        output_tokens=event.usage.output_tokens if event.usage else None,
        groundedness=score,
        completed_at=event.completed_at,
    )
    stored = await deps.online.record_response(record)
    if stored and score is not None:
        metrics.GROUNDEDNESS.labels(tenant=event.tenant, model=record.model_key).observe(score)
    return stored


async def observe_request(deps: Deps, event: RequestSubmittedV1, meta: EventMeta) -> bool:
    """Record a live request: its prompt length and (sampled) the question's embedding."""
    if event.user_id == EVALUATOR_USER or event.request_id.startswith(EVAL_PREFIX):
        return False
    question = question_of(event.variables, event.messages)
    embedding: list[float] | None = None
    if (
        question is not None
        and deps.embedder is not None
        and sampled(event.request_id, deps.settings.request_sample_rate)
    ):
        embedding = (await asyncio.to_thread(deps.embedder.embed_documents, [question]))[0]
    record = RequestRecord(
        event_id=meta.id,
        request_id=event.request_id,
        tenant=event.tenant,
        prompt_name=prompt_name_of(event.prompt),
        prompt_length=prompt_text_length(event.variables, event.messages),
        embedding=embedding,
        submitted_at=event.submitted_at,
    )
    return await deps.online.record_request(record)


async def observe_feedback(deps: Deps, event: FeedbackSubmittedV1, meta: EventMeta) -> bool:
    """Record a feedback (joined to its response when read, so order does not matter)."""
    if event.request_id.startswith(EVAL_PREFIX):
        return False
    record = FeedbackRecord(
        event_id=meta.id,
        feedback_id=event.feedback_id,
        request_id=event.request_id,
        tenant=event.tenant,
        rating=event.rating,
        thumbs=event.thumbs,
        submitted_at=event.submitted_at,
    )
    stored = await deps.online.record_feedback(record)
    if stored and event.rating is not None:
        metrics.FEEDBACK_SCORE.labels(tenant=event.tenant).observe(event.rating)
    return stored


async def observe_prompt(deps: Deps, event: PromptRenderedV1, meta: EventMeta) -> bool:
    """Record the experiment and variant of a rendered prompt (nothing without an experiment)."""
    if (event.experiment is None and event.variant is None) or event.request_id.startswith(EVAL_PREFIX):
        return False
    record = PromptAttribution(
        event_id=meta.id,
        request_id=event.request_id,
        tenant=event.tenant,
        prompt_name=event.prompt_name,
        prompt_version=event.prompt_version,
        experiment=event.experiment,
        variant=event.variant,
        rendered_at=event.rendered_at,
    )
    return await deps.online.record_attribution(record)


@dataclass(frozen=True)
class DriftReport:
    """One drift check: every scope's signals, and the alerts raised (or, dry, that would be)."""

    checked_at: datetime
    recent: str
    reference: str
    scopes: list[ScopeDrift]
    raised: list[AlertFiring] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    """Keys of alerts not raised because they fired within the cooldown."""


def thresholds_of(deps: Deps) -> Thresholds:
    """The thresholds the settings give."""
    s = deps.settings
    return Thresholds(
        centroid_distance=s.drift_centroid_threshold,
        psi=s.drift_psi_threshold,
        refusal_rate=s.drift_refusal_rate_threshold,
        groundedness_drop=s.groundedness_drop_threshold,
        min_samples=s.drift_min_samples,
    )


def _firing(spec: AlertSpec, now: datetime) -> AlertFiring:
    return AlertFiring(
        alert_id=derive_event_id(spec.key, AlertRaisedV1.event_type, now.isoformat()),
        key=spec.key,
        alert_name=spec.alert_name,
        severity=spec.severity,
        summary=spec.summary,
        labels=spec.labels,
        value=spec.value,
        raised_at=now,
    )


async def _publish(deps: Deps, firing: AlertFiring) -> None:
    event = AlertRaisedV1(
        alert_id=firing.alert_id,
        alert_name=firing.alert_name,
        severity=firing.severity,
        summary=firing.summary,
        labels=firing.labels,
        value=firing.value,
        raised_at=firing.raised_at,
    )
    await deps.publisher.publish(event, event_id=firing.alert_id)
    await deps.online.mark_published(firing.alert_id)
    log.warning("alert raised", alert=firing.alert_name, summary=firing.summary)


async def _windows(
    deps: Deps, now: datetime, recent: Window, reference: Window
) -> tuple[list[RequestRecord], list[ResponseRecord], list[FeedbackRecord], dict[str, Scope]]:
    since = None
    if recent.span is not None and reference.span is not None:
        since = now - recent.span - reference.span
    limit = deps.settings.drift_fetch_limit
    requests = await deps.online.requests(since, now, limit)
    responses = await deps.online.responses(since, now, limit)
    feedback = await deps.online.feedback(since, now, limit)
    scope_of: dict[str, Scope] = {r.request_id: (r.tenant, r.prompt_name) for r in requests}
    scope_of.update({r.request_id: (r.tenant, r.prompt_name or NO_PROMPT) for r in responses})
    missing = [f.request_id for f in feedback if f.request_id not in scope_of]
    if missing:
        for r in await deps.online.responses_for(missing):
            scope_of[r.request_id] = (r.tenant, r.prompt_name or NO_PROMPT)
    return requests, responses, feedback, scope_of


async def check_drift(deps: Deps, now: datetime | None = None, *, publish: bool = True) -> DriftReport:
    """Compare the recent window with the reference window, per tenant and prompt, for every signal;
    set the drift gauges; raise `alert.raised` for each drifted alert not in its cooldown (recorded
    first, then published; a firing whose publication failed is published on the next check, same id).
    With `publish=False` nothing is recorded or published: `raised` lists what would fire."""
    now = now or deps.clock()
    if publish:
        for pending in await deps.online.unpublished():
            await _publish(deps, pending)
    recent = Window.parse(deps.settings.drift_recent_window)
    reference = Window.parse(deps.settings.drift_reference_window)
    thresholds = thresholds_of(deps)
    requests, responses, feedback, scope_of = await _windows(deps, now, recent, reference)
    grouped: dict[Scope, tuple[list[RequestRecord], list[ResponseRecord], list[FeedbackRecord]]] = {}
    for q in requests:
        grouped.setdefault((q.tenant, q.prompt_name), ([], [], []))[0].append(q)
    for r in responses:
        grouped.setdefault((r.tenant, r.prompt_name or NO_PROMPT), ([], [], []))[1].append(r)
    for f in feedback:
        grouped.setdefault(scope_of.get(f.request_id, (f.tenant, NO_PROMPT)), ([], [], []))[2].append(f)
    report = DriftReport(now, str(recent), str(reference), [])
    gauges: dict[str, float] = {}
    for (tenant, prompt), (qs, rs, fs) in sorted(grouped.items()):
        ref_q, cur_q = split_windows(qs, lambda x: x.submitted_at, now, recent, reference)
        ref_r, cur_r = split_windows(rs, lambda x: x.completed_at, now, recent, reference)
        ref_f, cur_f = split_windows(fs, lambda x: x.submitted_at, now, recent, reference)
        signals, skipped = compare(
            WindowSamples.of(ref_q, ref_r, ref_f), WindowSamples.of(cur_q, cur_r, cur_f), thresholds
        )
        models = tuple(sorted({model_label(r.model, r.model_version) for r in cur_r if r.model}))
        scope = ScopeDrift(tenant, prompt, models, tuple(signals), tuple(skipped))
        report.scopes.append(scope)
        for s in signals:
            name = f"{s.name}_{s.statistic}"
            gauges[name] = max(gauges.get(name, s.value), s.value)
        for spec in alerts_for(scope):
            firing = _firing(spec, now)
            if not publish:
                report.raised.append(firing)
            elif await deps.online.fire(firing, timedelta(seconds=deps.settings.alert_cooldown_s)):
                await _publish(deps, firing)
                report.raised.append(firing)
            else:
                report.suppressed.append(spec.key)
    for name, value in gauges.items():
        metrics.DRIFT.labels(signal=name).set(value)
    return report


async def quality_summary(deps: Deps, since: timedelta, by: GroupBy) -> list[QualityRow]:
    """Quality of the live traffic of the last `since`, per prompt version, model version or variant."""
    now = deps.clock()
    limit = deps.settings.drift_fetch_limit
    responses = await deps.online.responses(now - since, now, limit)
    feedback = await deps.online.feedback(now - since, now, limit)
    seen = {r.request_id for r in responses}
    context = await deps.online.responses_for(sorted({f.request_id for f in feedback} - seen))
    ids: Sequence[str] = sorted(seen | {r.request_id for r in context})
    attributions = await deps.online.attributions(ids) if by == "variant" else []
    return summarize(
        responses,
        feedback,
        attributions,
        by,
        hallucination_threshold=deps.settings.hallucination_threshold,
        context=context,
    )


async def recent_alerts(deps: Deps, since: timedelta | None, limit: int = 100) -> list[AlertFiring]:
    """The alerts raised in the last `since` (all when None), newest first."""
    return await deps.online.alerts(None if since is None else deps.clock() - since, limit)
