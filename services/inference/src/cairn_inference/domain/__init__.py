"""Pure rules of the inference service: completions and their errors, chat formatting, batching,
stop strings, usage, and the events a screened input leads to."""

from cairn_inference.domain.batching import BatchKey, batch_key, dispatch_delay, plan_batch
from cairn_inference.domain.chat import chat_dicts, render_chatml
from cairn_inference.domain.completion import (
    AdapterNotFoundError,
    BackendUnavailableError,
    Completion,
    FinishReason,
    GenerationTimeoutError,
    InferenceError,
    ModelError,
    ModelNotServedError,
    failure_reason,
)
from cairn_inference.domain.outcomes import GENERATE_ON, completion_event, ended_response
from cairn_inference.domain.stops import find_stop, truncate_at_stop
from cairn_inference.domain.usage import usage_from_openai

__all__ = [
    "GENERATE_ON",
    "AdapterNotFoundError",
    "BackendUnavailableError",
    "BatchKey",
    "Completion",
    "FinishReason",
    "GenerationTimeoutError",
    "InferenceError",
    "ModelError",
    "ModelNotServedError",
    "batch_key",
    "chat_dicts",
    "completion_event",
    "dispatch_delay",
    "ended_response",
    "failure_reason",
    "find_stop",
    "plan_batch",
    "render_chatml",
    "truncate_at_stop",
    "usage_from_openai",
]
