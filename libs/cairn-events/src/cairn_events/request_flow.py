"""Events of the request path: request → prompt → context → input screening → completion → response."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cairn_events.base import INT64_MAX, Event, PromptName, PromptRef, RequestId, Timestamp
from cairn_events.common import (
    CacheOutcome,
    ChatMessage,
    ContextChunk,
    GenerationParams,
    JsonScalar,
    ResponseStatus,
    RetrievalOptions,
    RouteDecision,
    SafetyFinding,
    TokenUsage,
    Verdict,
)

__all__ = [
    "CompletionDeltaGeneratedV1",
    "CompletionGeneratedV1",
    "ContextAssembledV1",
    "InputScreenedV1",
    "PromptRenderedV1",
    "RequestSubmittedV1",
    "ResponseCompletedV1",
]

_REQUEST_ID = "The id of the upstream request; every event of the request carries it and is keyed by it."
_TENANT = "The tenant the request belongs to."
_PROMPT_NAME = "Name of the prompt in the prompt store."
_PROMPT_VERSION = "Version of the prompt that was rendered."
_PARAMS = "Sampling parameters for the generation."
_MODEL = "The model (registry name) asked for; none for the tenant's production model."


class RequestSubmittedV1(Event):
    """An upstream system asks Cairn to answer with a managed prompt.

    Produced by upstream systems (any language, any Kafka client) on `cairn.requests`,
    keyed by `request_id`. The answer comes back as `cairn.response.completed.v1` on
    `cairn.responses` with the same `request_id`.
    """

    event_type: ClassVar[str] = "cairn.request.submitted.v1"
    topic: ClassVar[str] = "cairn.requests"
    key_field: ClassVar[str] = "request_id"

    request_id: RequestId = Field(
        description="Unique id chosen by the producer (1-128 of `A-Za-z0-9._:-`); the partition key, "
        "the CloudEvents subject and the correlation id of everything that follows."
    )
    tenant: str = Field("default", min_length=1, description=_TENANT)
    prompt: PromptRef = Field(
        description="The prompt to render: `name` (its production label), `name@label` or `name:version`."
    )
    variables: dict[str, JsonScalar] = Field({}, description="Values for the prompt template's variables.")
    messages: list[ChatMessage] = Field(
        [],
        description="Extra conversation turns appended after the rendered prompt (e.g. chat history).",
    )
    retrieval: RetrievalOptions | None = Field(
        None, description="Ground the answer in retrieved documents; none to follow the prompt's own setting."
    )
    params: GenerationParams = Field(GenerationParams(), description=_PARAMS)
    model: str | None = Field(None, description=_MODEL)
    user_id: str | None = Field(
        None, description="Pseudonymous id of the end user, for feedback and audit; never an e-mail address."
    )
    metadata: dict[str, str] = Field(
        {}, description="Free-form string labels kept with the request for audit and analytics."
    )
    submitted_at: Timestamp = Field(description="When the upstream system submitted the request (RFC 3339).")


class PromptRenderedV1(Event):
    """The prompt store resolved a request's prompt reference and rendered its messages."""

    event_type: ClassVar[str] = "cairn.prompt.rendered.v1"
    topic: ClassVar[str] = "cairn.prompts"
    key_field: ClassVar[str] = "request_id"

    request_id: RequestId = Field(description=_REQUEST_ID)
    tenant: str = Field(min_length=1, description=_TENANT)
    prompt_name: PromptName = Field(description=_PROMPT_NAME)
    prompt_version: int = Field(ge=1, le=INT64_MAX, description=_PROMPT_VERSION)
    prompt_label: str | None = Field(None, description="The label the reference resolved through, if any.")
    experiment: str | None = Field(None, description="The A/B experiment that chose the version, if any.")
    variant: str | None = Field(
        None, description="The experiment variant this request was assigned to, if any."
    )
    messages: list[ChatMessage] = Field(
        min_length=1, description="The rendered conversation, request turns appended."
    )
    retrieval: RetrievalOptions | None = Field(None, description="Retrieval to run; none for no grounding.")
    params: GenerationParams = Field(description=_PARAMS)
    model: str | None = Field(None, description=_MODEL)
    rendered_at: Timestamp = Field(description="When the prompt was rendered (RFC 3339).")


class ContextAssembledV1(Event):
    """The retriever grounded the rendered prompt in retrieved chunks (possibly none)."""

    event_type: ClassVar[str] = "cairn.context.assembled.v1"
    topic: ClassVar[str] = "cairn.contexts"
    key_field: ClassVar[str] = "request_id"

    request_id: RequestId = Field(description=_REQUEST_ID)
    tenant: str = Field(min_length=1, description=_TENANT)
    prompt_name: PromptName = Field(description=_PROMPT_NAME)
    prompt_version: int = Field(ge=1, le=INT64_MAX, description=_PROMPT_VERSION)
    messages: list[ChatMessage] = Field(
        min_length=1, description="The conversation to send to the model, retrieved context included."
    )
    chunks: list[ContextChunk] = Field(description="The chunks placed in the context, best first.")
    context_tokens: int = Field(ge=0, le=INT64_MAX, description="Tokens taken by the retrieved context.")
    params: GenerationParams = Field(description=_PARAMS)
    model: str | None = Field(None, description=_MODEL)
    assembled_at: Timestamp = Field(description="When the context was assembled (RFC 3339).")


class InputScreenedV1(Event):
    """Safety screened a request's input (prompt and context) and gave a verdict."""

    event_type: ClassVar[str] = "cairn.input.screened.v1"
    topic: ClassVar[str] = "cairn.screenings"
    key_field: ClassVar[str] = "request_id"

    request_id: RequestId = Field(description=_REQUEST_ID)
    tenant: str = Field(min_length=1, description=_TENANT)
    verdict: Verdict = Field(
        description="The screening verdict; only `allow` and `redact` go on to inference."
    )
    findings: list[SafetyFinding] = Field(description="The result of every check that ran.")
    policy: str = Field(description="The safety policy (name or name@version) that was applied.")
    messages: list[ChatMessage] = Field(
        min_length=1, description="The conversation to send to the model, redactions applied."
    )
    chunks: list[ContextChunk] = Field(description="The retrieved chunks in the context.")
    prompt_name: PromptName = Field(description=_PROMPT_NAME)
    prompt_version: int = Field(ge=1, le=INT64_MAX, description=_PROMPT_VERSION)
    params: GenerationParams = Field(description=_PARAMS)
    model: str | None = Field(None, description=_MODEL)
    screened_at: Timestamp = Field(description="When screening finished (RFC 3339).")


class CompletionGeneratedV1(Event):
    """Inference generated a completion for a screened request."""

    event_type: ClassVar[str] = "cairn.completion.generated.v1"
    topic: ClassVar[str] = "cairn.completions"
    key_field: ClassVar[str] = "request_id"

    request_id: RequestId = Field(description=_REQUEST_ID)
    tenant: str = Field(min_length=1, description=_TENANT)
    model: str = Field(min_length=1, description="The model that generated (registry name or base model).")
    model_version: str | None = Field(None, description="The registry version of the model, if registered.")
    adapter: str | None = Field(None, description="The LoRA adapter applied, if any.")
    backend: str = Field(
        min_length=1, description="The inference backend, e.g. `sglang`, `transformers-cpu`."
    )
    text: str = Field(description="The generated text.")
    finish_reason: str = Field(description="Why generation stopped, e.g. `stop`, `length`.")
    usage: TokenUsage = Field(description="Tokens consumed.")
    latency_ms: float = Field(ge=0.0, description="Wall time of the generation in milliseconds.")
    time_to_first_token_ms: float | None = Field(
        None, ge=0.0, description="Milliseconds until the first token, when the backend streams."
    )
    chunks: list[ContextChunk] = Field(description="The retrieved chunks the model was given.")
    prompt_name: PromptName = Field(description=_PROMPT_NAME)
    prompt_version: int = Field(ge=1, le=INT64_MAX, description=_PROMPT_VERSION)
    generated_at: Timestamp = Field(description="When generation finished (RFC 3339).")
    cache: CacheOutcome | None = Field(
        None,
        description="What the response cache did: a `hit` reused an earlier request's answer (no "
        "generation: `usage` is that answer's, `latency_ms` the lookup's); none when the cache is off.",
    )
    route: RouteDecision | None = Field(
        None,
        description="How the routing policy chose the model and which models failed before it answered; "
        "none when no routing rule applied.",
    )


class CompletionDeltaGeneratedV1(Event):
    """A piece of a completion while it is generated, for a request that asked to stream
    (`params.stream`).

    Produced by inference on `cairn.completions.deltas`, keyed by `request_id`, so a request's deltas
    stay in order. The pieces of one generation, joined in `index` order, are its text before output
    screening; the final answer is still the `cairn.response.completed.v1` on `cairn.responses`,
    which may block, redact or replace it.
    """

    event_type: ClassVar[str] = "cairn.completion_delta.generated.v1"
    topic: ClassVar[str] = "cairn.completions.deltas"
    key_field: ClassVar[str] = "request_id"

    request_id: RequestId = Field(description=_REQUEST_ID)
    tenant: str = Field(min_length=1, description=_TENANT)
    index: int = Field(ge=0, le=INT64_MAX, description="Position of this delta in its generation, from 0.")
    offset: int = Field(
        ge=0,
        le=INT64_MAX,
        description="Characters (Unicode code points) of the generated text before this delta: a consumer "
        "appends `text` only when it holds exactly that many, and so skips repeats and notices gaps.",
    )
    text: str = Field(
        description="The text generated since the previous delta (may be empty in the last one)."
    )
    output_tokens: int = Field(
        ge=0, le=INT64_MAX, description="Tokens generated so far, this delta included."
    )
    last: bool = Field(description="Whether this is the generation's last delta.")
    finish_reason: str | None = Field(
        None, description="Why generation stopped (`stop`, `length`), on the last delta; none before."
    )
    model: str = Field(min_length=1, description="The model that generates (registry name or base model).")
    generated_at: Timestamp = Field(description="When this delta was generated (RFC 3339).")


class ResponseCompletedV1(Event):
    """The final answer to an upstream request, whatever the outcome.

    Consumed by upstream systems on `cairn.responses`. `status` says how the request
    ended: `completed` (with `text`), `blocked` (by a safety verdict), `rejected` (the
    request was invalid, e.g. an unknown prompt) or `failed` (an internal error).
    """

    event_type: ClassVar[str] = "cairn.response.completed.v1"
    topic: ClassVar[str] = "cairn.responses"
    key_field: ClassVar[str] = "request_id"

    request_id: RequestId = Field(description=_REQUEST_ID)
    tenant: str = Field(min_length=1, description=_TENANT)
    status: ResponseStatus = Field(description="How the request ended.")
    text: str | None = Field(None, description="The answer (redactions applied); none unless completed.")
    reason: str | None = Field(None, description="Why the request was blocked, rejected or failed.")
    citations: list[ContextChunk] = Field([], description="The retrieved chunks the answer was grounded in.")
    model: str | None = Field(None, description="The model that generated the answer, if any.")
    model_version: str | None = Field(None, description="The registry version of the model, if registered.")
    adapter: str | None = Field(None, description="The LoRA adapter applied, if any.")
    usage: TokenUsage | None = Field(None, description="Tokens consumed, when a generation ran.")
    verdict: Verdict | None = Field(None, description="The output screening verdict, when screening ran.")
    findings: list[SafetyFinding] = Field([], description="Output screening findings.")
    prompt_name: PromptName | None = Field(None, description="Name of the prompt used, once resolved.")
    prompt_version: int | None = Field(
        None, ge=1, le=INT64_MAX, description="Version of the prompt used, once resolved."
    )
    completed_at: Timestamp = Field(description="When the response was produced (RFC 3339).")
    cache: CacheOutcome | None = Field(
        None, description="For a generated answer: what inference's response cache did (see the completion)."
    )
    route: RouteDecision | None = Field(
        None,
        description="How inference's routing policy chose the model (see the completion); none: no rule.",
    )
