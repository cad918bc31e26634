"""The inference service's handler: generate for screened inputs that may go on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cairn_bus import EventMeta
from cairn_events import InputScreenedV1
from cairn_inference.bootstrap import Deps
from cairn_inference.domain.completion import Completion, failure_reason
from cairn_inference.domain.outcomes import GENERATE_ON, completion_event, failed_response
from cairn_observability import get_logger

log = get_logger("cairn.inference")


async def on_input_screened(event: InputScreenedV1, meta: EventMeta, deps: Deps) -> None:
    """Allowed or redacted input → a `CompletionGeneratedV1`; a generation that fails, times out or finds
    no backend → a `failed` `ResponseCompletedV1` saying why. Other verdicts are safety's to answer.
    A redelivered input (same event id) publishes nothing more.
    """
    if event.verdict not in GENERATE_ON:
        return
    async with deps.inbox.claim(meta.id) as first:
        if not first:
            log.info("input already handled; redelivery ignored", event_id=meta.id)
            return
        model = event.model or deps.default_model
        try:
            completion: Completion = await asyncio.wait_for(
                deps.backend.generate(event.messages, event.params, model=model),
                timeout=deps.generation_timeout_s,
            )
        except Exception as exc:  # every failure becomes a failed response: never silence
            reason = failure_reason(exc, deps.generation_timeout_s)
            log.warning("generation failed", reason=reason, model=model)
            failed = failed_response(event, model=model, adapter=None, reason=reason, now=datetime.now(UTC))
            await deps.publisher.publish(failed, cause=meta)
            return
        await deps.publisher.publish(completion_event(event, completion, datetime.now(UTC)), cause=meta)
