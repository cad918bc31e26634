"""Cairn inference service: screened inputs in, completions (or failed responses) out.

Public API: the `ModelBackend`/`AdapterManager`/`InboxClaims` ports, the `Completion` a backend
returns and the errors it raises, the settings, `build` (the service's dependencies) and the
tiny test model. Adapters are imported from `cairn_inference.adapters.<name>` (they pull in
torch or httpx).
"""

from cairn_inference.domain.completion import (
    AdapterNotFoundError,
    BackendUnavailableError,
    Completion,
    FinishReason,
    GenerationTimeoutError,
    InferenceError,
    ModelError,
    ModelNotServedError,
)
from cairn_inference.ports import AdapterManager, InboxClaims, ModelBackend
from cairn_inference.settings import Settings
from cairn_inference.tiny import TINY_MODEL_NAME, build_tiny_model

__all__ = [
    "TINY_MODEL_NAME",
    "AdapterManager",
    "AdapterNotFoundError",
    "BackendUnavailableError",
    "Completion",
    "FinishReason",
    "GenerationTimeoutError",
    "InboxClaims",
    "InferenceError",
    "ModelBackend",
    "ModelError",
    "ModelNotServedError",
    "Settings",
    "build_tiny_model",
]
