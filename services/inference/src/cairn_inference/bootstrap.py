"""Builds the inference service's dependencies from settings; tests pass fakes or a tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import trace

from cairn_bus import Inbox, InMemoryInbox, Publisher
from cairn_bus.background import in_background
from cairn_bus.objects import ObjectStore, S3ObjectStore
from cairn_bus.policy_files import TenantPolicyFiles, resolve_folder
from cairn_inference.adapters.adapter_files import S3AdapterFiles
from cairn_inference.adapters.conversion import MANIFEST, ConversionResult, ensure_converted
from cairn_inference.adapters.registry_loader import read_registry
from cairn_inference.adapters.telemetry import TracedBackend, publish_budgets
from cairn_inference.domain.budget import SpendLedger
from cairn_inference.domain.completion import ModelNotServedError
from cairn_inference.domain.references import ResolvedModel
from cairn_inference.domain.registry import RegistryView
from cairn_inference.domain.routing import RoutingPolicy
from cairn_inference.ports import AdapterFiles, AdapterManager, ModelBackend, QuestionEmbedder, ResponseCache
from cairn_inference.served_adapters import ServedAdapters
from cairn_inference.settings import Settings
from cairn_observability import get_logger
from cairn_observability.pricing import PriceTable, load_price_table

__all__ = ["Deps", "build", "open_backend", "prepare_model_dir"]

log = get_logger("cairn.inference")


@dataclass
class Deps:
    """What the inference handlers need."""

    backend: ModelBackend
    """The backend, wrapped in GenAI telemetry."""
    publisher: Publisher
    inbox: Inbox
    """Handles each input once (`inbox.once`): a claim made by an attempt that fails is not kept."""
    inbox_consumer: str
    """The consumer the inbox claims for: the consumer group, so its replicas share claims."""
    default_model: str
    """The model asked for when an input names none."""
    generation_timeout_s: float
    registry: RegistryView
    """Versions and stages per model, from `cairn.models`."""
    served: ServedAdapters
    """The adapters loaded on the backend."""
    served_model: str = "cairn-qa"
    """The registry model that answers requests naming none."""
    canary_share: float = 0.0
    """Share of the served model's implicit requests sent to its staging version."""
    adapters: AdapterManager | None = None
    """The backend's LoRA management, when it has one."""
    prices: PriceTable | None = None
    """Model prices and tenant budgets (`cairn_cost_usd_total`); None records no cost."""
    delta_every_tokens: int = 8
    """A streaming request's deltas: one per this many generated tokens ..."""
    delta_every_s: float = 0.25
    """... or per this many seconds, whichever comes first."""
    cache: ResponseCache | None = None
    """The response cache (`domain.cache`); None: every request is generated."""
    cache_ttl_s: float = 86_400.0
    """How long a stored answer may be reused."""
    embedder: QuestionEmbedder | None = None
    """Embeds questions for the semantic cache; None: exact reuse only, whatever the prompt asks."""
    semantic_similarity: float = 0.98
    """The similarity from which a close question reuses an answer, for prompts that set none."""
    ledger: SpendLedger | None = None
    """Each tenant's spend per day, when budgets are enforced (with `prices`); None: not limited."""
    quantized: dict[str, ModelBackend] = field(default_factory=dict)
    """Backends serving a quantized copy of the base model, by quantization (`int8`), wrapped in telemetry."""
    routing: TenantPolicyFiles[RoutingPolicy] | None = None
    """The routing policies (`routing.plan_for`); None: no routing."""

    def backend_for(self, served: ResolvedModel) -> ModelBackend:
        """The backend that serves `served`: the quantized one its registry version asks for, else
        `backend`. Raises ModelNotServedError when that quantization is not loaded here."""
        if served.quantization is None:
            return self.backend
        found = self.quantized.get(served.quantization)
        if found is None:
            loaded = ", ".join(sorted(self.quantized)) or "none"
            raise ModelNotServedError(
                f"{served.model}:{served.version} is served {served.quantization}, which this inference "
                f"does not load (quantized backends: {loaded}; set CAIRN_QUANTIZED_BACKENDS)"
            )
        return found


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
    """The backend the settings select, ready to generate (the local model converted and loaded).

    The `instant` backend (benchmarks) is refused unless `benchmark_mode` is on.
    """
    if settings.inference_backend == "instant":
        if not settings.benchmark_mode:
            raise ValueError(
                "CAIRN_INFERENCE_BACKEND=instant is a benchmark instrument (a fixed answer, no model) "
                "and is refused outside benchmarks: set CAIRN_BENCHMARK_MODE=1 to use it"
            )
        from cairn_inference.adapters.instant import InstantBackend

        log.warning("instant backend: every answer is a fixed text (benchmark mode)")
        return InstantBackend()
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


async def open_quantized(settings: Settings, backend: ModelBackend) -> dict[str, ModelBackend]:
    """The quantized copies of `backend`'s model that `quantized_backends` asks for, by quantization.

    Only the transformers backend quantizes here; another (SGLang) serves the precision its server was
    started with, so nothing is added and versions asking for a quantization fail with the reason.
    """
    from cairn_inference.adapters.transformers_cpu import TransformersBackend

    if not settings.quantized_backends:
        return {}
    if not isinstance(backend, TransformersBackend):
        log.warning(
            "quantized backends need the transformers backend; none loaded",
            backend=backend.name,
            asked=settings.quantized_backends,
        )
        return {}
    out: dict[str, ModelBackend] = {}
    for quantization in settings.quantized_backends:
        out[quantization] = await asyncio.to_thread(backend.quantized, quantization)
        log.info("quantized backend loaded", model=settings.model_name, quantization=quantization)
    return out


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    backend: ModelBackend | None = None,
    inbox: Inbox | None = None,
    tracer: trace.Tracer | None = None,
    registry: RegistryView | None = None,
    objects: ObjectStore | None = None,
    adapter_files: AdapterFiles | None = None,
    prices: PriceTable | None = None,
    cache: ResponseCache | None = None,
    ledger: SpendLedger | None = None,
    quantized: dict[str, ModelBackend] | None = None,
    routing: TenantPolicyFiles[RoutingPolicy] | None = None,
    embedder: QuestionEmbedder | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service; `backend`, `inbox`, `objects` (the S3 store), `adapter_files`,
    `cache`, `embedder` and `ledger` override what the settings select (`response_cache=exact` opens the
    response cache, `semantic` the cache and the question embedder; `budgets=enforce` with a price table
    that sets budgets opens the spend ledger).

    Without `registry`, the view is rebuilt from `cairn.models` (read to its end) before the
    service is ready; either way the adapters of production and staging versions are then loaded.
    A backend passed in stays the caller's (not closed here), as do `quantized` backends; ones built
    here are closed on exit.
    """
    async with AsyncExitStack() as stack:
        if backend is None:
            backend = await open_backend(settings)
            stack.push_async_callback(backend.aclose)
            quantized = await open_quantized(settings, backend)
            for extra in quantized.values():
                stack.push_async_callback(extra.aclose)
        adapters = backend if isinstance(backend, AdapterManager) else None
        address = getattr(backend, "server_address", (None, None))
        traced = TracedBackend(backend, tracer=tracer, server_address=address[0], server_port=address[1])
        traced_quantized: dict[str, ModelBackend] = {
            name: TracedBackend(extra, tracer=tracer) for name, extra in (quantized or {}).items()
        }
        if inbox is None:
            inbox = await _open_inbox(settings, stack)
        if registry is None:
            registry = RegistryView()
            await read_registry(
                settings.kafka_bootstrap, registry, timeout_s=settings.registry_rebuild_timeout_s
            )
        if adapter_files is None:
            adapter_files = S3AdapterFiles(
                objects or S3ObjectStore.from_settings(settings),
                settings.resolved_adapter_cache_dir(),
                backend_root=settings.sglang_adapter_root if settings.inference_backend == "sglang" else None,
            )
        served = ServedAdapters(adapters, adapter_files)
        await served.sync_all(registry)
        if prices is None:
            prices = _load_prices(settings)
        if cache is None and settings.response_cache != "off":
            cache = await _open_cache(settings, stack)
        if embedder is None and settings.response_cache == "semantic":
            embedder = await _open_embedder()
        if ledger is None and settings.budgets == "enforce" and prices is not None and _has_budgets(prices):
            ledger = await _open_ledger(settings, stack)
        yield Deps(
            backend=traced,
            publisher=publisher,
            inbox=inbox,
            inbox_consumer=settings.group_id,
            default_model=settings.model_name,
            generation_timeout_s=settings.generation_timeout_s,
            registry=registry,
            served=served,
            served_model=settings.served_model,
            canary_share=settings.canary_share,
            adapters=adapters,
            prices=prices,
            delta_every_tokens=settings.stream_delta_tokens,
            delta_every_s=settings.stream_delta_ms / 1000,
            cache=cache,
            cache_ttl_s=settings.response_cache_ttl_s,
            embedder=embedder if settings.response_cache == "semantic" else None,
            semantic_similarity=settings.semantic_cache_similarity,
            ledger=ledger,
            quantized=traced_quantized,
            routing=routing if routing is not None else _open_routing(settings),
        )


def _open_routing(settings: Settings) -> TenantPolicyFiles[RoutingPolicy] | None:
    """The routing policies of `routing_dir`, every file validated now (a bad one stops the start with
    its file and fields named); None when routing is off."""
    if not settings.routing_dir:
        return None
    folder = resolve_folder(settings.routing_dir, "CAIRN_ROUTING_DIR", __file__)
    if not folder.is_dir():
        raise FileNotFoundError(f"routing folder {folder} (CAIRN_ROUTING_DIR) does not exist")
    files = TenantPolicyFiles(folder, RoutingPolicy)
    loaded = files.validate_all()
    log.info("routing policies loaded", folder=str(folder), policies={p.name: p.version for p in loaded})
    return files


def _has_budgets(prices: PriceTable) -> bool:
    return prices.budgets.any


async def _open_ledger(settings: Settings, stack: AsyncExitStack) -> SpendLedger:
    """The spend ledger the settings select (`budget_store`, else as `inbox`)."""
    store = settings.budget_store or settings.inbox
    log.info("tenant budgets enforced", store=store)
    if store == "memory":
        from cairn_inference.adapters.budget_memory import InMemorySpendLedger

        return InMemorySpendLedger()
    from cairn_bus.postgres import create_pool
    from cairn_inference.adapters.budget_postgres import PostgresSpendLedger

    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    stack.push_async_callback(pool.close)
    ledger = PostgresSpendLedger(pool)
    await ledger.migrate()
    return ledger


CACHE_PURGE_INTERVAL_S = 3600.0
"""How often expired answers are removed from the response cache's table."""


async def _open_cache(settings: Settings, stack: AsyncExitStack) -> ResponseCache:
    """The response cache's store the settings select (`response_cache_store`, else as `inbox`): this
    process's memory, or the `inference_response_cache` table (its pool closed when `stack` closes,
    expired answers removed every `CACHE_PURGE_INTERVAL_S`)."""
    store = settings.response_cache_store or settings.inbox
    log.info(
        "response cache on", kind=settings.response_cache, store=store, ttl_s=settings.response_cache_ttl_s
    )
    if store == "memory":
        from cairn_inference.adapters.cache_memory import InMemoryResponseCache

        return InMemoryResponseCache(capacity=settings.response_cache_capacity)
    from cairn_auth.encryption import Keyring, MasterKey, PostgresTenantKeyStore
    from cairn_bus.postgres import create_pool
    from cairn_inference.adapters.cache_postgres import PostgresResponseCache

    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    stack.push_async_callback(pool.close)
    master = MasterKey.configured()
    cache = PostgresResponseCache(pool, Keyring(master, PostgresTenantKeyStore(pool)) if master else None)
    await cache.migrate()
    await stack.enter_async_context(in_background(_purging(cache), "response-cache-purge"))
    return cache


async def _open_embedder() -> QuestionEmbedder:
    """The semantic cache's embedder (all-MiniLM-L6-v2 from its package), loaded now: a few seconds."""
    from cairn_inference.adapters.question_embedder import MiniLMQuestionEmbedder

    embedder = await asyncio.to_thread(MiniLMQuestionEmbedder)
    log.info("semantic cache on", embedder=embedder.name)
    return embedder


async def _purging(cache: ResponseCache) -> None:
    while True:
        try:
            gone = await cache.purge(datetime.now(UTC))
            if gone:
                log.info("expired answers removed from the response cache", count=gone)
        except Exception as exc:
            log.warning("response cache purge failed", error=repr(exc))
        await asyncio.sleep(CACHE_PURGE_INTERVAL_S)


def _load_prices(settings: Settings) -> PriceTable | None:
    """The configured price table (its budgets published as `cairn_cost_budget_usd`), or None."""
    path = settings.resolved_price_table()
    if path is None:
        log.warning("no price table: cost is not recorded (set CAIRN_PRICE_TABLE)")
        return None
    table = load_price_table(path)
    publish_budgets(table)
    log.info("price table loaded", path=str(path), models=sorted(table.models))
    return table


async def _open_inbox(settings: Settings, stack: AsyncExitStack) -> Inbox:
    """The inbox the settings select: this process's most recent `inbox_capacity` ids, or the
    `cairn_inbox` table shared by every replica (its pool closed when `stack` closes)."""
    if settings.inbox == "memory":
        return InMemoryInbox(capacity=settings.inbox_capacity)
    from cairn_bus import PostgresInbox
    from cairn_bus.postgres import create_pool

    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    stack.push_async_callback(pool.close)
    inbox = PostgresInbox(pool)
    await inbox.migrate()
    return inbox
