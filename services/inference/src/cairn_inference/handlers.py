"""The inference service's handlers: generate for screened inputs that may go on; follow the registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cairn_bus import EventMeta
from cairn_events import InputScreenedV1, ModelPromotedV1, ModelRegisteredV1
from cairn_inference.adapters.telemetry import record_cost
from cairn_inference.bootstrap import Deps
from cairn_inference.domain.completion import AdapterNotFoundError, Completion, failure_reason
from cairn_inference.domain.deltas import reporting_to
from cairn_inference.domain.outcomes import GENERATE_ON, completion_event, failed_response
from cairn_inference.domain.references import ResolvedModel, UnknownModelError, resolve
from cairn_inference.streaming import DeltaStream, streams
from cairn_observability import get_logger, record_request_outcome

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
        try:
            served = resolve(
                event.model,
                deps.registry,
                served_model=deps.served_model,
                base_model=deps.default_model,
                request_id=event.request_id,
                canary_share=deps.canary_share,
            )
        except UnknownModelError as exc:
            log.warning("unknown model reference", model=event.model, reason=str(exc))
            failed = failed_response(event, model=None, adapter=None, reason=failure_reason(exc), now=_now())
            await deps.publisher.publish(failed, cause=meta)
            _count(failed.status.value, event, failed.completed_at, meta)
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
        try:
            with reporting_to(stream.progress if stream is not None else None):
                completion = await asyncio.wait_for(_generate(event, served, deps), deps.generation_timeout_s)
        except Exception as exc:  # every failure becomes a failed response: never silence
            if stream is not None:
                await stream.abandon()
            reason = failure_reason(exc, deps.generation_timeout_s)
            log.warning("generation failed", reason=reason, model=served.model, adapter=served.adapter)
            failed = failed_response(
                event,
                model=served.model,
                model_version=served.model_version,
                adapter=served.adapter,
                reason=reason,
                now=_now(),
            )
            await deps.publisher.publish(failed, cause=meta)
            _count(failed.status.value, event, failed.completed_at, meta)
            return
        if (
            stream is not None
        ):  # the last delta before the completion: the gateway's stream ends on the answer
            await stream.finish(completion)
        generated = completion_event(event, completion, _now(), served)
        await deps.publisher.publish(generated, cause=meta)
        if deps.prices is not None:
            record_cost(
                deps.prices,
                tenant=event.tenant,
                model=generated.model,
                usage=generated.usage,
                base_model=deps.default_model,
            )


def _count(status: str, event: InputScreenedV1, completed_at: datetime, meta: EventMeta) -> None:
    """A request this service ended (failed): `cairn_requests_total` (replays apart), and its duration when known."""
    record_request_outcome(
        status, event.tenant, event.prompt_name, completed_at, replay=meta.replay_id is not None
    )


async def _generate(event: InputScreenedV1, served: ResolvedModel, deps: Deps) -> Completion:
    """Generate with the adapter of `served` loaded first; an adapter the backend lost (a restarted
    server) is loaded once more and the generation retried once."""
    await deps.served.ensure(served)
    try:
        return await deps.backend.generate(
            event.messages, event.params, model=deps.default_model, adapter=served.adapter
        )
    except AdapterNotFoundError:
        if served.adapter is None:
            raise
        deps.served.forget(served.adapter)
        await deps.served.ensure(served)
        return await deps.backend.generate(
            event.messages, event.params, model=deps.default_model, adapter=served.adapter
        )


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
