"""The events a screened input leads to: a completion, or a failed response."""

from __future__ import annotations

from datetime import datetime

from cairn_events import (
    CacheOutcome,
    CompletionGeneratedV1,
    InputScreenedV1,
    ResponseCompletedV1,
    ResponseStatus,
    RouteDecision,
    Verdict,
)
from cairn_inference.domain.completion import Completion
from cairn_inference.domain.references import ResolvedModel

GENERATE_ON = frozenset({Verdict.ALLOW, Verdict.REDACT})
"""Verdicts that go on to inference; safety itself answers the others (block, review)."""


def completion_event(
    screened: InputScreenedV1,
    completion: Completion,
    now: datetime,
    served: ResolvedModel | None = None,
    cache: CacheOutcome | None = None,
    route: RouteDecision | None = None,
) -> CompletionGeneratedV1:
    """The completion of a screened input, carrying its chunks and prompt over.

    `served` names what answered (registry model, version, adapter); without it, the backend's own
    names on the completion are used.
    """
    return CompletionGeneratedV1(
        request_id=screened.request_id,
        tenant=screened.tenant,
        model=served.model if served else completion.model,
        model_version=served.model_version if served else completion.model_version,
        adapter=served.adapter if served else completion.adapter,
        backend=completion.backend,
        text=completion.text,
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        latency_ms=max(0.0, completion.latency_ms),
        time_to_first_token_ms=None if completion.ttft_ms is None else max(0.0, completion.ttft_ms),
        chunks=screened.chunks,
        prompt_name=screened.prompt_name,
        prompt_version=screened.prompt_version,
        generated_at=now,
        cache=cache,
        route=route,
    )


def ended_response(
    screened: InputScreenedV1,
    status: ResponseStatus,
    *,
    reason: str,
    now: datetime,
    served: ResolvedModel | None = None,
    route: RouteDecision | None = None,
) -> ResponseCompletedV1:
    """The final answer to a request inference ends without a completion: `failed` (its generation failed:
    the model, version and adapter that were to answer, none when its reference named nothing that
    exists) or `rejected` (refused before generation: its tenant is over budget); and why."""
    return ResponseCompletedV1(
        request_id=screened.request_id,
        tenant=screened.tenant,
        status=status,
        reason=reason,
        model=served.model if served else None,
        model_version=served.model_version if served else None,
        adapter=served.adapter if served else None,
        prompt_name=screened.prompt_name,
        prompt_version=screened.prompt_version,
        completed_at=now,
        route=route,
    )
