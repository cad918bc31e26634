"""Payload types shared by several events: chat turns, generation and retrieval options, safety findings."""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from cairn_events.base import INT64_MAX, Int64, frozen_config

__all__ = [
    "B64_PATTERN",
    "OVER_BUDGET_REASON",
    "Base64",
    "CacheOutcome",
    "ChatMessage",
    "ContextChunk",
    "DeadLetterKind",
    "GenerationParams",
    "JsonScalar",
    "LoraConfig",
    "ModelStage",
    "Quantization",
    "RawHeader",
    "ResponseStatus",
    "RetrievalOptions",
    "RouteAttempt",
    "RouteDecision",
    "SafetyFinding",
    "SuiteScore",
    "TokenUsage",
    "Verdict",
]

JsonScalar = str | Int64 | float | bool
"""A JSON scalar value: string, integer, number or boolean (never null, never a list or object)."""

B64_PATTERN = r"^[A-Za-z0-9+/]*={0,2}$"
"""Standard base64 (RFC 4648 section 4) with padding."""

Base64 = Annotated[str, StringConstraints(pattern=B64_PATTERN)]
"""Bytes carried as a standard base64 string."""


class ChatMessage(BaseModel):
    """One turn of a chat conversation."""

    model_config = frozen_config()

    role: Literal["system", "user", "assistant"] = Field(
        description="Who speaks: `system` (instructions), `user` or `assistant`."
    )
    content: str = Field(description="The text of the turn.")


class GenerationParams(BaseModel):
    """Sampling parameters for one generation."""

    model_config = frozen_config()

    max_tokens: int = Field(256, ge=1, le=8192, description="Maximum number of tokens to generate.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy decoding.")
    top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="Nucleus sampling: keep the smallest token set of this mass."
    )
    stop: list[str] = Field([], description="Strings that end generation when produced.")
    seed: Int64 | None = Field(
        None, description="Random seed for reproducible sampling; none for a random one."
    )
    stream: bool = Field(
        False,
        description="Publish the text as it is generated, in `cairn.completion_delta.generated.v1` events "
        "on `cairn.completions.deltas`, besides the completion; set by the gateway for `stream: true`.",
    )
    latency_class: Literal["interactive", "standard", "batch"] | None = Field(
        None,
        description="How soon the caller needs the answer, for inference's routing policy (docs/routing.md); "
        "none: no preference. It changes which model may answer, never the tokens of a given model.",
    )
    cache_sampled: bool = Field(
        False,
        description="Whether inference's response cache may reuse an answer generated with sampling "
        "(temperature > 0, no seed); set by the prompt (its template's params), never by a request "
        "(the prompt store keeps the prompt's value). Off: only deterministic answers are reused.",
    )
    cache_semantic: bool = Field(
        False,
        description="Whether inference's response cache may answer with the stored answer to a question "
        "close in meaning to this one (the last user message's embedding; same tenant, prompt version, "
        "context chunks, model and parameters); set by the prompt, never by a request. Off: only an "
        "identical request reuses an answer.",
    )
    cache_similarity: float | None = Field(
        None,
        ge=0.5,
        le=1.0,
        description="For `cache_semantic`: the cosine similarity from which a stored question counts as the "
        "same question; set by the prompt, never by a request; none: inference's default "
        "(`CAIRN_SEMANTIC_CACHE_SIMILARITY`).",
    )


class RetrievalOptions(BaseModel):
    """How to ground a request in retrieved documents (RAG)."""

    model_config = frozen_config()

    query: str | None = Field(
        None, description="The search query; none to use the last user message of the rendered prompt."
    )
    top_k: int = Field(4, ge=1, le=50, description="How many chunks to retrieve.")
    min_score: float | None = Field(None, description="Drop chunks scoring below this; none keeps all top_k.")
    collection: str | None = Field(
        None, description="Document collection to search; none for the tenant default."
    )


class ContextChunk(BaseModel):
    """A retrieved chunk of a document, with its provenance."""

    model_config = frozen_config()

    document_id: str = Field(description="Id of the source document in the retriever.")
    chunk_id: str = Field(description="Id of this chunk within the retriever.")
    source_uri: str = Field(description="Where the document came from (URI given at ingestion).")
    content_hash: str = Field(
        description="Hash of the chunk text, e.g. `sha256:<hex>`, to prove what was used."
    )
    score: float = Field(description="Retrieval score of this chunk for the query (higher is more relevant).")
    text: str = Field(description="The chunk text given to the model.")


class TokenUsage(BaseModel):
    """Tokens consumed by one generation."""

    model_config = frozen_config()

    input_tokens: int = Field(ge=0, le=INT64_MAX, description="Tokens in the prompt, context included.")
    output_tokens: int = Field(ge=0, le=INT64_MAX, description="Tokens generated.")

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


OVER_BUDGET_REASON = "over budget:"
"""How the `reason` of a `rejected` response begins when the tenant's daily budget is spent (inference);
front doors answer it as a quota error (the gateway: 429 `insufficient_quota`)."""


class CacheOutcome(BaseModel):
    """Whether inference's response cache answered a request instead of the model (docs/cache.md)."""

    model_config = frozen_config()

    result: Literal["hit", "miss", "bypass"] = Field(
        description="`hit`: a stored answer was reused and nothing was generated; `miss`: generated, and "
        "stored for the next identical request; `bypass`: the cache was not consulted (see `reason`)."
    )
    kind: Literal["exact", "semantic"] | None = Field(
        None,
        description="How the stored answer matched: `exact` (the same tenant, prompt version, "
        "messages, context chunks, model version, adapter and parameters) or `semantic` (the same, "
        "but the last user message close in meaning, see `similarity`); none for a bypass.",
    )
    source_request_id: str | None = Field(
        None, description="For a hit: the request whose generated answer was reused."
    )
    reason: str | None = Field(
        None, description="For a bypass: why, e.g. `not deterministic` (temperature > 0 and no seed)."
    )
    similarity: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="For a semantic hit: the cosine similarity of this request's question to the "
        "stored one's.",
    )


class RouteAttempt(BaseModel):
    """A model the routing policy tried that did not answer, and why."""

    model_config = frozen_config()

    model: str = Field(min_length=1, description="The model reference tried, e.g. `cairn-qa-int8`.")
    reason: str = Field(min_length=1, description="Why it did not answer: down, timed out, not served, ...")


class RouteDecision(BaseModel):
    """How inference's routing policy chose the model of a request (docs/routing.md)."""

    model_config = frozen_config()

    policy: str = Field(
        min_length=1, description="The policy file that applied, e.g. `default` or a tenant's."
    )
    policy_version: int = Field(ge=1, le=INT64_MAX, description="The `version` of that policy file.")
    rule: str = Field(min_length=1, description="The rule that matched (the first whose conditions held).")
    chain: list[str] = Field(min_length=1, description="The rule's models, tried in this order.")
    fallbacks: list[RouteAttempt] = Field(
        [], description="The models tried before the one that answered (all of them when none did)."
    )


class Verdict(StrEnum):
    """The outcome of a safety screening."""

    ALLOW = "allow"
    REDACT = "redact"
    BLOCK = "block"
    REVIEW = "review"


class SafetyFinding(BaseModel):
    """The result of one safety check on one text."""

    model_config = frozen_config()

    check: str = Field(description="The check that ran, e.g. `pii.email`, `toxicity`, `prompt_injection`.")
    label: str = Field(description="What the check looked for or found, e.g. `email_address`, `toxic`.")
    score: float = Field(description="The check's score; for classifiers a probability between 0 and 1.")
    fired: bool = Field(description="Whether the check's threshold was crossed.")
    detail: str | None = Field(None, description="Human-readable detail; never the sensitive text itself.")


class ResponseStatus(StrEnum):
    """How a request ended, or `held`: waiting for a human reviewer.

    `held` is the only status that is not final: the same request is answered again, once, when
    the review is resolved (`completed` for an approved or edited answer, `blocked` for a rejected one).
    """

    COMPLETED = "completed"
    BLOCKED = "blocked"
    REJECTED = "rejected"
    FAILED = "failed"
    HELD = "held"


class ReviewDecision(StrEnum):
    """What a reviewer (or a review's deadline) decided about a held text."""

    APPROVE = "approve"
    EDIT = "edit"
    REJECT = "reject"


class ModelStage(StrEnum):
    """The stage of a model version in the registry."""

    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Quantization(StrEnum):
    """How a model version's weights are served, when not at the backend's full precision."""

    INT8 = "int8"
    """Linear layers' weights as 8-bit integers, activations quantized per call (dynamic quantization)."""


class LoraConfig(BaseModel):
    """Hyper-parameters of a LoRA fine-tuning job."""

    model_config = frozen_config()

    rank: int = Field(8, ge=1, le=INT64_MAX, description="LoRA rank r of the low-rank update matrices.")
    alpha: int = Field(
        16, ge=1, le=INT64_MAX, description="LoRA scaling alpha (the update is scaled by alpha / rank)."
    )
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout applied to the LoRA input.")
    target_modules: list[str] = Field(
        min_length=1, description="Names of the modules that get adapters, e.g. `q_proj`, `v_proj`."
    )
    learning_rate: float = Field(gt=0.0, description="Optimizer learning rate.")
    epochs: int = Field(ge=1, le=INT64_MAX, description="Passes over the training split.")
    batch_size: int = Field(ge=1, le=INT64_MAX, description="Examples per optimizer step.")
    max_steps: int | None = Field(
        None, ge=1, le=INT64_MAX, description="Stop after this many steps; none to run all epochs."
    )
    seed: Int64 = Field(description="Random seed for data order and initialisation.")
    start_from: Literal["base", "production"] = Field(
        "base",
        description="`base`: a fresh adapter on the base model; `production`: continue training the registry "
        "model's production adapter (the base when it has none).",
    )
    replay_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of the production adapter's own training rows mixed in again (seeded sample) when "
        "starting from production; none: 0.3 from production, 0 from the base.",
    )


class SuiteScore(BaseModel):
    """The score of a candidate model (and its baseline) on one metric of one evaluation suite."""

    model_config = frozen_config()

    suite: str = Field(description="Evaluation suite, e.g. `support-qa-heldout`, `adversarial`.")
    metric: str = Field(description="Metric within the suite, e.g. `exact_match`, `refusal_rate`.")
    candidate: float = Field(description="The candidate model's score.")
    baseline: float | None = Field(None, description="The baseline model's score; none without a baseline.")
    passed: bool = Field(description="Whether the candidate met the suite's gate on this metric.")


class DeadLetterKind(StrEnum):
    """Why a message was dead-lettered."""

    NOT_JSON = "not_json"
    NOT_AVRO = "not_avro"
    MISSING_HEADERS = "missing_headers"
    UNKNOWN_TYPE = "unknown_type"
    SCHEMA_INVALID = "schema_invalid"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    HANDLER_FAILED = "handler_failed"
    UNSIGNED = "unsigned"
    FORGED = "forged"


class RawHeader(BaseModel):
    """One Kafka header of a dead-lettered message, kept byte for byte."""

    model_config = frozen_config()

    key: str = Field(description="The header name.")
    value_b64: Base64 = Field(description="The header value, base64-encoded (empty for a null value).")

    @classmethod
    def from_bytes(cls, key: str, value: bytes | None) -> RawHeader:
        """Keep a raw header; a null value is kept as an empty one."""
        return cls(key=key, value_b64=base64.b64encode(value or b"").decode("ascii"))

    def value_bytes(self) -> bytes:
        """The original header value."""
        return base64.b64decode(self.value_b64)
