"""A request, answered: the rendered prompt, or the rejection that ends the request."""

from __future__ import annotations

from datetime import datetime

from cairn_events import PromptRenderedV1, RequestSubmittedV1, ResponseCompletedV1, ResponseStatus
from cairn_prompt_store.domain.errors import PromptNotFoundError, PromptStoreError, RenderError
from cairn_prompt_store.domain.refs import parse_ref
from cairn_prompt_store.domain.render import render
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.resolution import resolve


def subject_of(request: RequestSubmittedV1) -> str:
    """Who an experiment keeps sticky: the user, else the request."""
    return request.user_id or request.request_id


def rejection(
    request: RequestSubmittedV1,
    reason: str,
    now: datetime,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
) -> ResponseCompletedV1:
    """The response that ends a request the prompt store cannot serve."""
    return ResponseCompletedV1(
        request_id=request.request_id,
        tenant=request.tenant,
        status=ResponseStatus.REJECTED,
        reason=reason,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        completed_at=now,
    )


async def answer(
    store: PromptStore, request: RequestSubmittedV1, now: datetime
) -> PromptRenderedV1 | ResponseCompletedV1:
    """The prompt rendered for `request`, or a rejection saying clearly why it cannot be.

    The prompt is looked up in the request's tenant, then in the shared tenant `default`; another
    tenant's prompt is unknown to it.

    Storage errors propagate (they are transient: the request is retried, not rejected).
    """
    ref = parse_ref(request.prompt)  # the event's pattern already guarantees a valid reference
    try:
        resolution = await resolve(store, ref, subject_of(request), tenant=request.tenant)
    except PromptNotFoundError as exc:
        return rejection(request, str(exc), now)
    except PromptStoreError as exc:
        return rejection(request, str(exc), now, prompt_name=ref.name)
    version = resolution.version
    try:
        rendered = render(
            version.spec,
            request.variables,
            request.messages,
            params=request.params,
            retrieval=request.retrieval,
            model=request.model,
        )
    except RenderError as exc:
        reason = f"prompt {version.name}:{version.version}: {exc}"
        return rejection(request, reason, now, version.name, version.version)
    return PromptRenderedV1(
        request_id=request.request_id,
        tenant=request.tenant,
        prompt_name=version.name,
        prompt_version=version.version,
        prompt_label=resolution.label,
        experiment=resolution.experiment,
        variant=resolution.variant,
        messages=rendered.messages,
        retrieval=rendered.retrieval,
        params=rendered.params,
        model=rendered.model,
        rendered_at=now,
    )
