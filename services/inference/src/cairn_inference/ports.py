"""The ports of the inference service: the model backend, its LoRA adapters and their files, the
response cache and the semantic cache's question embedder (the inbox of handled events is
`cairn_bus.Inbox`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from cairn_events import ChatMessage, GenerationParams
from cairn_inference.domain.cache import CachedAnswer
from cairn_inference.domain.completion import Completion

__all__ = ["AdapterFiles", "AdapterManager", "ModelBackend", "QuestionEmbedder", "ResponseCache"]


@runtime_checkable
class ModelBackend(Protocol):
    """Generates chat completions.

    Promises: `generate` returns a Completion carrying text, finish reason, token usage and
    timings, or raises an `InferenceError` (`ModelError`, `BackendUnavailableError`, ...) whose
    message says what went wrong. It may be called concurrently; a backend may batch
    concurrent calls. Cancelling the awaiting task abandons the generation.
    """

    name: str
    """The backend's name as recorded on events, e.g. `transformers-cpu`, `sglang`."""

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        model: str,
        adapter: str | None = None,
    ) -> Completion:
        """Generate the assistant's next turn for `messages` with `model` (and LoRA `adapter`)."""
        ...

    async def aclose(self) -> None:
        """Release the backend's resources (threads, connections); later calls fail."""
        ...


@runtime_checkable
class AdapterManager(Protocol):
    """Loads and unloads LoRA adapters at run time (the closed loop promotes tuned adapters)."""

    async def load_adapter(self, name: str, path: str) -> None:
        """Make adapter `name` (PEFT files at `path`, as the backend sees it) usable by `generate`.

        Raises ModelError when the backend rejects it, BackendUnavailableError when unreachable.
        """
        ...

    async def unload_adapter(self, name: str) -> None:
        """Forget adapter `name`; later requests naming it fail with AdapterNotFoundError."""
        ...


class AdapterFiles(Protocol):
    """Brings a registered adapter's files (an `s3://.../adapters/<job>/` folder) where the backend reads them."""

    async def fetch(self, name: str, uri: str) -> str:
        """Make the PEFT files under `uri` available as adapter `name`; returns the folder as the
        backend sees it (what `AdapterManager.load_adapter` takes).

        Raises ModelError when the files are missing or do not match their manifest; OSError
        when the object store is unreachable.
        """
        ...


class ResponseCache(Protocol):
    """Stored answers by exact key (`domain.cache`), per tenant, until they expire.

    Promises: `get` and `nearest` never return an entry of another tenant than asked, nor one expired
    at `now`, and `nearest` none of another scope;
    `put` keeps an unexpired entry already stored under the key (the first answer wins, so every hit
    names the same source request) and replaces an expired one; `purge` forgets entries expired before
    `before`, `erase_tenant` every entry of a tenant, each saying how many.
    """

    async def get(self, key: str, tenant: str, now: datetime) -> CachedAnswer | None:
        """The unexpired answer stored under `key` for `tenant`, if any."""
        ...

    async def put(self, answer: CachedAnswer) -> None:
        """Store `answer` unless an unexpired one is stored under its key."""
        ...

    async def nearest(
        self, scope: str, tenant: str, vector: Sequence[float], signature: str, now: datetime
    ) -> tuple[CachedAnswer, float] | None:
        """The unexpired answer of `tenant` stored under the semantic `scope` whose question's vector is
        most similar to `vector` (`domain.cache.best_match`) among those whose signature is compatible
        with `signature` (`domain.questions.compatible`), with that similarity; None when there is none."""
        ...

    async def purge(self, before: datetime) -> int:
        """Forget the entries that expired before `before`; how many were forgotten."""
        ...

    async def erase_tenant(self, tenant: str) -> int:
        """Forget every entry of `tenant` (its erasure); how many were forgotten."""
        ...


class QuestionEmbedder(Protocol):
    """Embeds a question for the semantic cache.

    Promises: an L2-normalised vector, always of the same dimension for one embedder; raises when the
    model cannot embed (the request is then generated as a miss)."""

    name: str
    """The embedding model, e.g. `all-MiniLM-L6-v2`."""

    async def embed(self, text: str) -> list[float]:
        """The vector of `text`."""
        ...
