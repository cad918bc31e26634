"""Builds the inference service's dependencies from settings; tests pass fakes or a tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace

from cairn_bus import Publisher
from cairn_inference.adapters.conversion import MANIFEST, ConversionResult, ensure_converted
from cairn_inference.adapters.inbox import MemoryInbox, PostgresInboxClaims
from cairn_inference.adapters.telemetry import TracedBackend
from cairn_inference.ports import AdapterManager, InboxClaims, ModelBackend
from cairn_inference.settings import Settings
from cairn_observability import get_logger

__all__ = ["Deps", "build", "open_backend", "prepare_model_dir"]

log = get_logger("cairn.inference")


@dataclass
class Deps:
    """What the inference handlers need."""

    backend: ModelBackend
    """The backend, wrapped in GenAI telemetry."""
    publisher: Publisher
    inbox: InboxClaims
    default_model: str
    """The model asked for when an input names none."""
    generation_timeout_s: float
    adapters: AdapterManager | None = None
    """The backend's LoRA management, when it has one."""


def prepare_model_dir(
    settings: Settings, progress: Callable[[str], None] | None = None
) -> tuple[Path, ConversionResult | None]:
    """The folder the transformers backend loads, converted from the GGUF first when needed.

    A `model_dir` that already holds a model (`config.json`) without a conversion manifest is
    used as it is (a tuned or test model); otherwise the GGUF is converted into it once.
    Blocking: the first conversion takes tens of seconds.
    """
    folder = settings.resolved_model_dir()
    if (folder / "config.json").is_file() and not (folder / MANIFEST).is_file():
        return folder, None
    gguf = Path(settings.model_gguf).expanduser() if settings.model_gguf else None
    return folder, ensure_converted(folder, gguf, progress=progress)


async def open_backend(settings: Settings) -> ModelBackend:
    """The backend the settings select, ready to generate (the local model converted and loaded)."""
    if settings.inference_backend == "sglang":
        if not settings.sglang_url:
            raise ValueError("CAIRN_SGLANG_URL must be set when CAIRN_INFERENCE_BACKEND=sglang")
        from cairn_inference.adapters.sglang import SGLangBackend

        key = settings.sglang_api_key.get_secret_value() if settings.sglang_api_key else None
        return SGLangBackend(
            settings.sglang_url,
            timeout_s=settings.generation_timeout_s,
            connect_timeout_s=settings.sglang_connect_timeout_s,
            stream=settings.sglang_stream,
            lora_mode=settings.sglang_lora_mode,
            api_key=key,
        )
    from cairn_inference.adapters.transformers_cpu import TransformersBackend

    def progress(message: str) -> None:
        log.info("model conversion", step=message)

    folder, _ = await asyncio.to_thread(prepare_model_dir, settings, progress)
    backend = await asyncio.to_thread(
        TransformersBackend.load,
        folder,
        model_name=settings.model_name,
        torch_threads=settings.torch_threads,
        device=settings.device,
        max_batch_size=settings.max_batch_size,
        batch_window_s=settings.batch_window_ms / 1000,
        batching=settings.batching,
        repetition_penalty=settings.repetition_penalty,
    )
    log.info("model loaded", model=settings.model_name, folder=str(folder), device=backend.device)
    return backend


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    backend: ModelBackend | None = None,
    inbox: InboxClaims | None = None,
    tracer: trace.Tracer | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service; `backend` and `inbox` override what the settings select.

    A backend passed in stays the caller's (not closed here); one built here is closed on exit.
    """
    async with AsyncExitStack() as stack:
        if backend is None:
            backend = await open_backend(settings)
            stack.push_async_callback(backend.aclose)
        adapters = backend if isinstance(backend, AdapterManager) else None
        address = getattr(backend, "server_address", (None, None))
        traced = TracedBackend(backend, tracer=tracer, server_address=address[0], server_port=address[1])
        if inbox is None:
            inbox = await _open_inbox(settings, stack)
        yield Deps(
            backend=traced,
            publisher=publisher,
            inbox=inbox,
            default_model=settings.model_name,
            generation_timeout_s=settings.generation_timeout_s,
            adapters=adapters,
        )


async def _open_inbox(settings: Settings, stack: AsyncExitStack) -> InboxClaims:
    if settings.inbox == "memory":
        return MemoryInbox(settings.inbox_capacity)
    import asyncpg

    pool = await asyncpg.create_pool(
        settings.postgres_dsn, min_size=settings.postgres_pool_min, max_size=settings.postgres_pool_max
    )
    stack.push_async_callback(pool.close)
    claims = PostgresInboxClaims(pool, consumer=settings.group_id)
    await claims.migrate()
    return claims
