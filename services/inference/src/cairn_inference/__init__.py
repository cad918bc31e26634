"""Cairn inference service: screened inputs in, completions (or failed responses) out.

Public API: the `ModelBackend`/`AdapterManager`/`AdapterFiles` ports, the `Completion` a backend
returns and the errors it raises, the registry view and model-reference resolution, the settings.
Adapters are imported from `cairn_inference.adapters.<name>` (they pull in torch or httpx); the inbox
of handled inputs is cairn-bus's (`InMemoryInbox`, `PostgresInbox`).
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
from cairn_inference.domain.references import ResolvedModel, UnknownModelError, resolve
from cairn_inference.domain.registry import ModelVersion, RegistryView
from cairn_inference.ports import AdapterFiles, AdapterManager, ModelBackend
from cairn_inference.settings import Settings

__all__ = [
    "AdapterFiles",
    "AdapterManager",
    "AdapterNotFoundError",
    "BackendUnavailableError",
    "Completion",
    "FinishReason",
    "GenerationTimeoutError",
    "InferenceError",
    "ModelBackend",
    "ModelError",
    "ModelNotServedError",
    "ModelVersion",
    "RegistryView",
    "ResolvedModel",
    "Settings",
    "UnknownModelError",
    "resolve",
]
