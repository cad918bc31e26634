"""A generated completion and the errors a model backend raises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cairn_events import TokenUsage


class FinishReason(StrEnum):
    """Why generation stopped (the OpenAI vocabulary, which SGLang speaks too)."""

    STOP = "stop"
    """The model ended its turn or produced a stop string."""
    LENGTH = "length"
    """`max_tokens` was reached."""
    CANCELLED = "cancelled"
    """The caller gave up (a timeout) before the model finished."""


@dataclass(frozen=True)
class Completion:
    """One generation's result, with what it cost and how long it took."""

    text: str
    finish_reason: str
    usage: TokenUsage
    latency_ms: float
    """Wall time from the request reaching the backend to its last token (queueing included)."""
    ttft_ms: float | None
    """Time to first token; None when the backend cannot tell (a non-streaming HTTP call)."""
    backend: str
    """The backend that generated, e.g. `transformers-cpu`, `sglang`."""
    model: str
    """The model that generated, as the backend names it."""
    model_version: str | None = None
    adapter: str | None = None


class InferenceError(Exception):
    """A generation failed; the message says why in words fit for a response's `reason`."""


class ModelError(InferenceError):
    """The model or its server rejected or failed the request."""


class BackendUnavailableError(InferenceError):
    """The backend cannot be reached, is not loaded, or is shutting down."""


class GenerationTimeoutError(InferenceError):
    """The generation did not finish in the time allowed."""


class ModelNotServedError(ModelError):
    """The request names a model this backend does not serve."""


class AdapterNotFoundError(ModelError):
    """The request names a LoRA adapter that is not loaded."""


def failure_reason(error: BaseException, timeout_s: float | None = None) -> str:
    """The `reason` of a failed response for a generation that raised `error` (a timeout when
    `error` is a TimeoutError raised by the caller's own deadline of `timeout_s`)."""
    if isinstance(error, TimeoutError) and not isinstance(error, InferenceError):
        limit = f" after {timeout_s:g} s" if timeout_s is not None else ""
        return f"generation timed out{limit}"
    if isinstance(error, GenerationTimeoutError):
        return f"generation timed out: {error}"
    if isinstance(error, BackendUnavailableError):
        return f"inference backend unavailable: {error}"
    if isinstance(error, InferenceError):
        return f"model error: {error}"
    return f"model error: {type(error).__name__}: {error}"
