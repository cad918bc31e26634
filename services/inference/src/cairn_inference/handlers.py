"""The inference service's handlers: generate for screened inputs that may go on; follow the registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cairn_auth.encryption import TENANT_ERASE
from cairn_bus import EventMeta
from cairn_events import (
    AdminActionRecordedV1,
    CacheOutcome,
    CompletionGeneratedV1,
    InputScreenedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    ResponseStatus,
    RouteDecision,
    TokenUsage,
)
from cairn_inference.adapters.telemetry import record_cost
from cairn_inference.bootstrap import Deps
from cairn_inference.domain.budget import (
    ALERT_LEVEL,
    DayUsage,
    budget_alert,
    budget_day,
    budget_left,
    crossed,
    over_budget,
    over_budget_reason,
    over_tokens_reason,
)
from cairn_inference.domain.cache import (
    CachedAnswer,
    bypass_reason,
    cache_key,
    hit,
    miss,
    question_of,
    semantic_hit,
    semantic_scope,
    semantic_threshold,
)
from cairn_inference.domain.completion import AdapterNotFoundError, Completion, failure_reason
from cairn_inference.domain.deltas import reporting_to
from cairn_inference.domain.outcomes import GENERATE_ON, completion_event, ended_response
from cairn_inference.domain.questions import signature
from cairn_inference.domain.references import ResolvedModel, UnknownModelError
from cairn_inference.routing import Attempts, NoModelAnsweredError, plan_for
from cairn_inference.streaming import DeltaStream, streams
from cairn_observability import get_logger, record_cache, record_request_outcome

log = get_logger("cairn.inference")


async def on_input_screened(event: InputScreenedV1, meta: EventMeta, deps: Deps) -> None:
    """Allowed or redacted input → a `CompletionGeneratedV1` naming the registry model, version and
    adapter that answered; a model reference that resolves to nothing, an adapter that cannot be
    loaded, or a generation that fails, times out or finds no backend → a `failed`
    `ResponseCompletedV1` saying why. Other verdicts are safety's to answer. A redelivered input
    (same event id) publishes nothing more. A request that asks to stream (`params.stream`) also
    gets its text as `CompletionDeltaGeneratedV1` deltas while it generates, the last one before
    the completion (`streaming.DeltaStream`).
    """
    if event.verdict not in GENERATE_ON:
        return
    async with deps.inbox.once(deps.inbox_consumer, meta.id) as claim:
        if not claim:
            log.info("input already handled; redelivery ignored", event_id=meta.id)
            return
        limits = _limits_of(event, meta, deps)
        spend = await _spend_today(event, deps) if limits is not None else None
        if (
            limits is not None
            and spend is not None
            and await _refused_over_budget(event, meta, deps, limits, spend)
        ):
            return
        left = budget_left(spend.cost_usd, limits.usd) if limits is not None and spend is not None else None
        attempts = Attempts(event, deps, plan_for(event, deps, left))
        try:
            served = attempts.next_model()
        except (UnknownModelError, NoModelAnsweredError) as exc:
            log.warning("no model to answer", model=event.model, reason=str(exc))
            await _fail(event, meta, deps, failure_reason(exc), None, attempts)
            return
        stream = (
            DeltaStream(
                event,
                meta,
                deps.publisher,
                served.model,
                every_tokens=deps.delta_every_tokens,
                every_s=deps.delta_every_s,
            )
            if streams(event, meta)
            else None
        )
        lookup = await _look_up(event, meta, served, deps)
        if lookup.answer is not None and lookup.outcome is not None:  # a hit: nothing generated
            await _answer_from_cache(
                event, meta, served, deps, lookup.answer, lookup.outcome, stream, attempts.route
            )
            return
        first = served
        try:
            with reporting_to(stream.progress if stream is not None else None):
                served, completion = await attempts.generate(
                    served,
                    lambda model: _generate(event, model, deps),
                    lambda: stream is not None and stream.started,
                )
        except Exception as exc:  # every failure becomes a failed response: never silence
            if stream is not None:
                await stream.abandon()
            reason = failure_reason(exc, attempts.timeout_s)
            log.warning("generation failed", reason=reason, model=served.model, adapter=served.adapter)
            await _fail(event, meta, deps, reason, served if attempts.plan is None else None, attempts)
            return
        if (
            stream is not None
        ):  # the last delta before the completion: the gateway's stream ends on the answer
            await stream.finish(completion)
        generated = completion_event(
            event, completion, _now(), served, cache=lookup.outcome, route=attempts.route
        )
        await deps.publisher.publish(generated, cause=meta)
        if deps.prices is not None:
            cost = record_cost(
                deps.prices,
                tenant=event.tenant,
                model=generated.model,
                usage=generated.usage,
                base_model=deps.default_model,
            )
            if limits is not None:
                await _charge(event, meta, deps, limits.usd, cost, generated.usage.total_tokens)
        if (
            lookup.outcome is not None and meta.replay_id is None
        ):  # a miss or a bypass: counted, nothing saved
            record_cache(lookup.outcome, event.tenant, 0, 0, None)
        if lookup.key is not None and served == first:  # a fallback's answer is not the first model's
            await _store(event, lookup, completion, generated, deps)


async def _fail(
    event: InputScreenedV1,
    meta: EventMeta,
    deps: Deps,
    reason: str,
    served: ResolvedModel | None,
    attempts: Attempts,
) -> None:
    """Answer `failed` with the reason (and the route tried, when one was)."""
    failed = ended_response(
        event, ResponseStatus.FAILED, reason=reason, now=_now(), served=served, route=attempts.route
    )
    await deps.publisher.publish(failed, cause=meta)
    _count(failed.status.value, event, failed.completed_at, meta)


@dataclass(frozen=True)
class _Limits:
    """A tenant's daily limits: dollars and tokens (None: not limited on that count)."""

    usd: float | None
    tokens: int | None


def _limits_of(event: InputScreenedV1, meta: EventMeta, deps: Deps) -> _Limits | None:
    """The tenant's daily budget and token limit when enforced for this request; None: not limited (no
    ledger, no price table, neither limit set for the tenant, or a replayed or shadow request, which
    operators make and the tenant is not charged for)."""
    if deps.ledger is None or deps.prices is None or meta.replay_id is not None:
        return None
    budgets = deps.prices.budgets
    limits = _Limits(budgets.for_tenant(event.tenant), budgets.tokens.for_tenant(event.tenant))
    return None if limits.usd is None and limits.tokens is None else limits


async def _spend_today(event: InputScreenedV1, deps: Deps) -> DayUsage | None:
    """The tenant's spend and tokens today (one read); None when the ledger cannot be read (logged): an
    outage of the budget's bookkeeping must not stop every tenant, so the request goes through unlimited."""
    if deps.ledger is None:
        return None
    try:
        return await deps.ledger.usage(event.tenant, budget_day(_now()))
    except Exception as exc:
        log.warning("tenant spend unknown: not limited", tenant=event.tenant, error=repr(exc))
        return None


async def _refused_over_budget(
    event: InputScreenedV1, meta: EventMeta, deps: Deps, limits: _Limits, spend: DayUsage
) -> bool:
    """Answer `rejected` (nothing generated) when the tenant has spent its budget or used its tokens
    today; whether it did."""
    day = budget_day(_now())
    if limits.usd is not None and over_budget(spend.cost_usd, limits.usd):
        reason = over_budget_reason(event.tenant, spend.cost_usd, limits.usd, day)
    elif limits.tokens is not None and spend.tokens >= limits.tokens:
        reason = over_tokens_reason(event.tenant, spend.tokens, limits.tokens, day)
    else:
        return False
    log.info("request refused: tenant over its daily limit", tenant=event.tenant, reason=reason)
    refused = ended_response(event, ResponseStatus.REJECTED, reason=reason, now=_now())
    await deps.publisher.publish(refused, cause=meta)
    _count(refused.status.value, event, refused.completed_at, meta)
    return True


async def _charge(
    event: InputScreenedV1, meta: EventMeta, deps: Deps, budget: float | None, cost: float, tokens: int
) -> None:
    """Add a generation's cost and tokens to the tenant's use today; raise `TenantBudget80` once per tenant
    and day when this addition crosses 80 % of the dollar budget (a failure is logged: the answer stands)."""
    if deps.ledger is None:
        return
    now = _now()
    day = budget_day(now)
    try:
        before, after = await deps.ledger.add(event.tenant, day, cost, tokens)
        if (
            budget is not None
            and crossed(before, after, budget)
            and await deps.ledger.first_alert(event.tenant, day, ALERT_LEVEL)
        ):
            alert = budget_alert(event.tenant, after, budget, day, now)
            await deps.publisher.publish(alert, cause=meta, event_id=alert.alert_id)
            log.warning("tenant past 80% of its daily budget", tenant=event.tenant, spent_usd=after)
    except Exception as exc:
        log.warning("tenant spend not recorded", tenant=event.tenant, cost_usd=cost, error=repr(exc))


@dataclass(frozen=True)
class _Lookup:
    """What the cache said for one request: its outcome (None: cache off), exact key and stored answer,
    and, when its prompt opted in to the semantic cache, its scope and question's vector."""

    outcome: CacheOutcome | None = None
    key: str | None = None
    answer: CachedAnswer | None = None
    scope: str | None = None
    vector: tuple[float, ...] | None = None
    signature: str | None = None


async def _look_up(event: InputScreenedV1, meta: EventMeta, served: ResolvedModel, deps: Deps) -> _Lookup:
    """Consult the cache: the exact key, then (when the prompt opted in) the closest stored question of
    the semantic scope. A cache that fails is a miss, never a failed request."""
    if deps.cache is None:
        return _Lookup()
    reason = bypass_reason(event, replay=meta.replay_id is not None)
    if reason is not None:
        return _Lookup(CacheOutcome(result="bypass", reason=reason))
    model = (served.model, served.model_version, served.adapter, deps.default_model)
    key = cache_key(event, model=model[0], model_version=model[1], adapter=model[2], base_model=model[3])
    try:
        found = await deps.cache.get(key, event.tenant, _now())
    except Exception as exc:
        log.warning("response cache unavailable: generating", error=repr(exc), request_id=event.request_id)
        return _Lookup(miss())
    if found is not None:
        return _Lookup(hit(found), key, found)
    threshold = semantic_threshold(event, deps.semantic_similarity)
    question = question_of(event)
    if threshold is None or deps.embedder is None or question is None:
        return _Lookup(miss(), key)
    scope = semantic_scope(
        event, model=model[0], model_version=model[1], adapter=model[2], base_model=model[3]
    )
    try:
        vector = tuple(await deps.embedder.embed(question))
        near = await deps.cache.nearest(scope, event.tenant, vector, signature(question), _now())
    except Exception as exc:
        log.warning("semantic cache unavailable", error=repr(exc), request_id=event.request_id)
        return _Lookup(miss(), key)
    if near is not None and near[1] >= threshold:
        return _Lookup(semantic_hit(*near), key, near[0])
    return _Lookup(miss("semantic"), key, None, scope, vector, signature(question))


async def _answer_from_cache(
    event: InputScreenedV1,
    meta: EventMeta,
    served: ResolvedModel,
    deps: Deps,
    answer: CachedAnswer,
    outcome: CacheOutcome,
    stream: DeltaStream | None,
    route: RouteDecision | None,
) -> None:
    """Publish the stored answer as this request's completion (streamed as one delta when asked):
    output screening judges it like any other. Its tokens and their price count as saved."""
    usage = TokenUsage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens)
    completion = Completion(
        text=answer.text,
        finish_reason=answer.finish_reason,
        usage=usage,
        latency_ms=0.0,
        ttft_ms=None,
        backend="cache",
        model=answer.model,
    )
    if stream is not None:
        await stream.finish(completion)
    generated = completion_event(event, completion, _now(), served, cache=outcome, route=route)
    await deps.publisher.publish(generated, cause=meta)
    saved = (
        deps.prices.cost(
            generated.model, usage.input_tokens, usage.output_tokens, base_model=deps.default_model
        )
        if deps.prices is not None
        else None
    )
    record_cache(outcome, event.tenant, usage.input_tokens, usage.output_tokens, saved)
    log.info("answered from the cache", request_id=event.request_id, source=answer.request_id)


async def _store(
    event: InputScreenedV1,
    lookup: _Lookup,
    completion: Completion,
    generated: CompletionGeneratedV1,
    deps: Deps,
) -> None:
    """Keep a finished generation for the next identical request, and for the next close question when
    the prompt opted in to the semantic cache (a failure to keep it is logged)."""
    if deps.cache is None or lookup.key is None or completion.finish_reason not in ("stop", "length"):
        return
    now = _now()
    answer = CachedAnswer(
        key=lookup.key,
        tenant=event.tenant,
        request_id=event.request_id,
        text=completion.text,
        finish_reason=completion.finish_reason,
        input_tokens=generated.usage.input_tokens,
        output_tokens=generated.usage.output_tokens,
        model=generated.model,
        created_at=now,
        expires_at=now + timedelta(seconds=deps.cache_ttl_s),
        scope=lookup.scope,
        vector=lookup.vector,
        signature=lookup.signature,
    )
    try:
        await deps.cache.put(answer)
    except Exception as exc:
        log.warning("answer not kept in the response cache", error=repr(exc), request_id=event.request_id)


def _count(status: str, event: InputScreenedV1, completed_at: datetime, meta: EventMeta) -> None:
    """A request this service ended (failed): `cairn_requests_total` (replays apart), and its duration when known."""
    record_request_outcome(
        status, event.tenant, event.prompt_name, completed_at, replay=meta.replay_id is not None
    )


async def _generate(event: InputScreenedV1, served: ResolvedModel, deps: Deps) -> Completion:
    """Generate with the adapter of `served` loaded first; an adapter the backend lost (a restarted
    server) is loaded once more and the generation retried once."""
    backend = deps.backend_for(served)
    await deps.served.ensure(served)
    try:
        return await backend.generate(
            event.messages, event.params, model=deps.default_model, adapter=served.adapter
        )
    except AdapterNotFoundError:
        if served.adapter is None:
            raise
        deps.served.forget(served.adapter)
        await deps.served.ensure(served)
        return await backend.generate(
            event.messages, event.params, model=deps.default_model, adapter=served.adapter
        )


async def on_admin_action(event: AdminActionRecordedV1, meta: EventMeta, deps: Deps) -> None:
    """A tenant's erasure (`tenant.erase`): forget the tenant's answers in the response cache (and
    destroy the cache's key for it); other admin actions are not this service's business."""
    if event.action != TENANT_ERASE or deps.cache is None:
        return
    erased = await deps.cache.erase_tenant(event.target)
    log.info("tenant erased from the response cache", tenant=event.target, answers=erased)


async def on_model_registered(event: ModelRegisteredV1, meta: EventMeta, deps: Deps) -> None:
    """Record the new version in the registry view; its adapter loads when promoted or first named."""
    if deps.registry.apply_registered(event, meta.id) is not None:
        log.info("model version registered", model=event.model_name, version=event.version)


async def on_model_promoted(event: ModelPromotedV1, meta: EventMeta, deps: Deps) -> None:
    """Move the version to its new stage in the view, then load the model's production and staging
    adapters and unload its archived ones (no restart). A promotion seen before changes nothing."""
    change = deps.registry.apply_promoted(event, meta.id)
    if change is None:
        return
    log.info(
        "model version promoted",
        model=event.model_name,
        version=event.version,
        stage=change.stage.value,
        archived=[v.version for v in change.archived],
    )
    await deps.served.sync(deps.registry, event.model_name)


def _now() -> datetime:
    return datetime.now(UTC)
