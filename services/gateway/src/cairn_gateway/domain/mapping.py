"""The mapping between OpenAI's chat completions and Cairn's request and response events.

`model` names a prompt, a model, or both (docs/gateway.md):

| `model` | prompt | model override |
|---|---|---|
| `qa`, `qa@beta`, `qa:3` (or `prompt:qa@beta`) | that prompt reference | none (the prompt's or the production model) |
| `model:cairn-qa:2`, `model:cairn-qa@staging` | the default prompt | that model reference |
| `qa@beta+model:cairn-qa:2` | `qa@beta` | `cairn-qa:2` |

`messages` become the request's `messages` (`developer` read as `system`); the prompt store renders
the prompt's template and appends them (the last user turn fills a `question` variable).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cairn_events import (
    OVER_BUDGET_REASON,
    ChatMessage,
    GenerationParams,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_events.base import PROMPT_REF_PATTERN
from cairn_gateway.domain.chat import ChatCompletionRequest, ChatTurn
from cairn_gateway.domain.errors import GatewayError, held_for_review, invalid_request

PROMPT_PREFIX = "prompt:"
MODEL_PREFIX = "model:"
_PROMPT_REF = re.compile(PROMPT_REF_PATTERN)
_MODEL_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(@[a-z]+|:[1-9][0-9]{0,8})?$")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Target:
    """What the OpenAI `model` field names: a prompt reference and an optional model reference."""

    prompt: str
    model: str | None


def parse_model(value: str, default_prompt: str) -> Target:
    """The prompt and model named by `value` (see the module docstring); 400 when it names neither."""
    prompt: str | None = None
    model: str | None = None
    for part in value.strip().split("+"):
        if part.startswith(MODEL_PREFIX):
            ref = part[len(MODEL_PREFIX) :]
            if model is not None or not _MODEL_REF.match(ref):
                raise _bad_model(value)
            model = ref
        else:
            ref = part[len(PROMPT_PREFIX) :] if part.startswith(PROMPT_PREFIX) else part
            if prompt is not None or not _PROMPT_REF.match(ref):
                raise _bad_model(value)
            prompt = ref
    return Target(prompt or default_prompt, model)


def _bad_model(value: str) -> GatewayError:
    return invalid_request(
        f"model {value!r} names no prompt or model: use a prompt reference (`qa`, `qa@beta`, `qa:3`), "
        "`model:<registry model>` (`model:cairn-qa:2`), or both joined by `+` (`qa@beta+model:cairn-qa:2`)",
        param="model",
        code="model_not_found",
    )


def _text(turn: ChatTurn, index: int) -> str:
    if turn.content is None:
        raise invalid_request(f"messages[{index}] has no content", param=f"messages.{index}.content")
    if isinstance(turn.content, str):
        return turn.content
    texts = []
    for part in turn.content:
        if part.type != "text" or part.text is None:
            raise invalid_request(
                f"messages[{index}]: only text content parts are served, not {part.type!r}",
                param=f"messages.{index}.content",
            )
        texts.append(part.text)
    return "\n".join(texts)


def chat_messages(turns: list[ChatTurn]) -> list[ChatMessage]:
    """The request's turns as Cairn messages; 400 for a tool or function turn or non-text content."""
    out = []
    for i, turn in enumerate(turns):
        if turn.role in ("tool", "function"):
            raise invalid_request(
                f"messages[{i}]: {turn.role} messages are not served", param=f"messages.{i}.role"
            )
        role = "system" if turn.role == "developer" else turn.role
        out.append(ChatMessage(role=role, content=_text(turn, i)))
    return out


SERVICE_TIERS: dict[str, str | None] = {
    "auto": None,
    "default": None,
    "flex": "batch",
    "priority": "interactive",
}
"""OpenAI's `service_tier` values and the latency class each asks inference's routing policy for."""


def generation_params(body: ChatCompletionRequest) -> GenerationParams:
    """The sampling parameters the client set (unset ones stay unset: the prompt's defaults apply)."""
    given: dict[str, Any] = {}
    if body.temperature is not None:
        given["temperature"] = body.temperature
    if body.top_p is not None:
        given["top_p"] = body.top_p
    tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    if tokens is not None:
        given["max_tokens"] = tokens
    if body.seed is not None:
        given["seed"] = body.seed
    if body.stop is not None:
        given["stop"] = [body.stop] if isinstance(body.stop, str) else body.stop
    if body.stream:
        given["stream"] = True  # inference publishes deltas on cairn.completions.deltas
    if body.service_tier is not None:
        if body.service_tier not in SERVICE_TIERS:
            known = ", ".join(SERVICE_TIERS)
            raise invalid_request(f"service_tier: must be one of {known}", param="service_tier")
        if SERVICE_TIERS[body.service_tier] is not None:
            given["latency_class"] = SERVICE_TIERS[body.service_tier]
    try:
        return GenerationParams.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise invalid_request(f"{param}: {first['msg']}", param=param) from None


def request_id_for(tenant: str, idempotency_key: str | None) -> str:
    """The request id: derived from tenant and Idempotency-Key (the same key of the same tenant is the
    same request), else new."""
    if idempotency_key is None:
        return f"gw-{uuid.uuid4().hex}"
    if not _KEY.match(idempotency_key):
        raise invalid_request(
            "Idempotency-Key must be 1-255 printable ASCII characters", param="Idempotency-Key"
        )
    digest = hashlib.sha256(f"{tenant}\n{idempotency_key}".encode()).hexdigest()
    return f"gw-{digest[:40]}"


def fingerprint(body: ChatCompletionRequest) -> str:
    """A hash of what the client asked for, to tell a retry from a different request under one key."""
    canonical = json.dumps(body.model_dump(mode="json", exclude_unset=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def to_request(
    body: ChatCompletionRequest,
    *,
    request_id: str,
    tenant: str,
    default_prompt: str,
    now: datetime,
) -> RequestSubmittedV1:
    """The `cairn.request.submitted.v1` event of a chat completion request; 400 when it has no such event."""
    if body.n not in (None, 1):
        raise invalid_request("only n=1 is served", param="n")
    if body.tools or body.functions:
        raise invalid_request("tool and function calls are not served", param="tools")
    target = parse_model(body.model, default_prompt)
    try:
        return RequestSubmittedV1(
            request_id=request_id,
            tenant=tenant,
            prompt=target.prompt,
            model=target.model,
            variables=body.variables,
            messages=chat_messages(body.messages),
            params=generation_params(body),
            user_id=body.user,
            metadata={**body.metadata, "gateway.model": body.model},
            submitted_at=now,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise invalid_request(f"{param}: {first['msg']}", param=param) from None


def finish_reason(response: ResponseCompletedV1, max_tokens: int | None) -> str:
    """OpenAI's finish reason: `content_filter` for a blocked answer, `length` when the answer used
    every token allowed, else `stop`."""
    if response.status is ResponseStatus.BLOCKED:
        return "content_filter"
    used = response.usage.output_tokens if response.usage else None
    if max_tokens is not None and used is not None and used >= max_tokens:
        return "length"
    return "stop"


def served_model(response: ResponseCompletedV1, asked: str) -> str:
    """The `model` of an answer: the model that generated (`cairn-qa:2`), else the one asked for."""
    if response.model is None:
        return asked
    return f"{response.model}:{response.model_version}" if response.model_version else response.model


def to_completion(
    response: ResponseCompletedV1, *, asked_model: str, max_tokens: int | None
) -> dict[str, Any]:
    """The OpenAI `chat.completion` body of a completed or blocked response; the Cairn specifics
    (request id, status, prompt version, citations) under the extra key `cairn`."""
    usage = response.usage
    prompt_tokens = usage.input_tokens if usage else 0
    completion_tokens = usage.output_tokens if usage else 0
    blocked = response.status is ResponseStatus.BLOCKED
    return {
        "id": f"chatcmpl-{response.request_id}",
        "object": "chat.completion",
        "created": int(response.completed_at.timestamp()),
        "model": served_model(response, asked_model),
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None if blocked else (response.text or ""),
                    "refusal": response.reason if blocked else None,
                },
                "logprobs": None,
                "finish_reason": finish_reason(response, max_tokens),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "cairn": cairn_details(response),
    }


def cairn_details(response: ResponseCompletedV1) -> dict[str, Any]:
    """Cairn's details of an answer (the extra key `cairn` of a completion or a stream's last chunk)."""
    return {
        "request_id": response.request_id,
        "status": response.status.value,
        "reason": response.reason,
        "prompt": response.prompt_name,
        "prompt_version": response.prompt_version,
        "model_version": response.model_version,
        "adapter": response.adapter,
        "citations": [c.model_dump(mode="json") for c in response.citations],
    }


def refusal(response: ResponseCompletedV1) -> GatewayError | None:
    """The error a rejected (400; 429 when the tenant's budget is spent), failed (500) or held (409)
    response is answered with; None for
    completed and blocked (a 200 whose finish reason tells them apart)."""
    rid = response.request_id
    reason = response.reason or response.status.value
    if response.status is ResponseStatus.REJECTED and reason.startswith(OVER_BUDGET_REASON):
        return GatewayError(  # the budget is back tomorrow (UTC): the client should not retry now
            429,
            reason,
            "insufficient_quota",
            "over_budget",
            request_id=rid,
            outcome="over_budget",
            retry=False,
        )
    if response.status is ResponseStatus.REJECTED:
        return GatewayError(
            400, reason, "invalid_request_error", "request_rejected", request_id=rid, outcome="rejected"
        )
    if response.status is ResponseStatus.FAILED:
        return GatewayError(500, reason, "server_error", "request_failed", request_id=rid, outcome="failed")
    if response.status is ResponseStatus.HELD:
        return held_for_review(rid, reason)
    return None
