"""Builds the retriever's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from cairn_auth import AuthSettings
from cairn_bus import Inbox, Publisher
from cairn_bus.background import in_background
from cairn_observability import get_logger
from cairn_retriever.domain.models import SearchMode
from cairn_retriever.ingest import ChunkingConfig, Ingestor
from cairn_retriever.ports import Embedder, PriorStore, VectorStore
from cairn_retriever.reindex import WatchedSource, parse_watched, scan_watched
from cairn_retriever.retrieval import Retriever, SearchConfig
from cairn_retriever.settings import Settings

if TYPE_CHECKING:
    from cairn_auth.serving import HttpServer


log = get_logger("cairn.retriever")
PURGE_EVERY_S = 3600.0
"""How often served-chunk records past their retention are purged."""


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """What the retriever's handlers need."""

    publisher: Publisher
    retriever: Retriever
    inbox: Inbox
    """Handles each event once (`inbox.once`): a claim made by an attempt that fails is not kept."""
    settings: Settings
    clock: Callable[[], datetime] = field(default=utc_now)
    http: HttpServer | None = None
    """Where the ingestion and search API listens, when the service serves it."""
    priors: PriorStore | None = None
    """The retrieval loop's state (served chunks, votes); None: feedback does not move ranking."""


def search_config(settings: Settings) -> SearchConfig:
    """Search ranking from settings."""
    return SearchConfig(SearchMode(settings.retrieval_mode), settings.candidate_depth, settings.rrf_k)


def chunking_config(settings: Settings) -> ChunkingConfig:
    """Chunking from settings."""
    return ChunkingConfig(settings.chunk_unit, settings.chunk_size, settings.chunk_overlap)


def load_embedder(settings: Settings, *, eager: bool = True) -> Embedder:
    """all-MiniLM-L6-v2 (or the model at `embedding_model_path`), loaded once per process (now, or on
    first use when not `eager`). Blocks."""
    from cairn_embedding import MiniLMEmbedder

    return MiniLMEmbedder(
        settings.embedding_model_path,
        threads=settings.embedding_threads,
        batch_size=settings.embedding_batch_size,
        eager=eager,
    )


async def open_pool(settings: Settings) -> Any:
    """A pool on `postgres_dsn` whose connections read and write pgvector's `vector` (the extension
    created first when the store is pgvector). A database that cannot be reached raises TransientError."""
    from cairn_bus.postgres import create_pool
    from cairn_retriever.adapters.postgres import ensure_vector_extension, register_vector

    if settings.vector_store == "pgvector":
        await ensure_vector_extension(settings.postgres_dsn)
    return await create_pool(
        settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max, init=register_vector
    )


@asynccontextmanager
async def open_store(settings: Settings, pool: Any = None) -> AsyncIterator[VectorStore]:
    """The configured vector store, schema ensured: pgvector on `pool` (or a pool of its own), or Weaviate."""
    if settings.vector_store == "weaviate":
        from cairn_retriever.adapters.weaviate import WeaviateStore

        if not settings.weaviate_url:
            raise ValueError("CAIRN_WEAVIATE_URL must be set when CAIRN_VECTOR_STORE=weaviate")
        store = await WeaviateStore.connect(
            settings.weaviate_url, settings.weaviate_grpc_port, alpha=settings.weaviate_alpha
        )
        try:
            await store.migrate()
            yield store
        finally:
            await store.close()
        return
    from cairn_retriever.adapters.pgvector import PgVectorStore

    own_pool = pool is None
    if own_pool:
        pool = await open_pool(settings)
    try:
        pg = PgVectorStore(
            pool,
            dimension=settings.embedding_dimension,
            language=settings.fulltext_language,
            ef_search=settings.hnsw_ef_search,
            fulltext_rank_limit=settings.fulltext_rank_limit,
        )
        await pg.migrate()
        yield pg
    finally:
        if own_pool:
            await pool.close()


def make_ingestor(settings: Settings, embedder: Embedder, store: VectorStore) -> Ingestor:
    """An ingestor with the configured chunking and the standard text extraction."""
    from cairn_retriever.adapters.sources import extract_text

    return Ingestor(embedder, store, extract_text, chunking_config(settings), settings.embedding_batch_size)


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    embedder: Embedder | None = None,
    store: VectorStore | None = None,
    inbox: Inbox | None = None,
    clock: Callable[[], datetime] | None = None,
    auth: AuthSettings | None = None,
    priors: PriorStore | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service. Without overrides: a PostgreSQL pool (the inbox, and the pgvector
    store unless Weaviate is configured), the model loaded once in a worker thread, and, when
    `http_enabled`, the ingestion and search API on `http_host:http_port` (API keys from
    `auth_api_keys` in the same database, `auth` default from `CAIRN_AUTH_*`), stopped when the
    block exits. With an `inbox` given (tests), no API is served and nothing runs in the background;
    otherwise the watched sources are scanned every `source_scan_interval_s` (the first scan at start)
    and served-chunk records older than `served_retention_days` are purged hourly. `priors` defaults
    to the PostgreSQL prior store on the pool when the loop is on (`prior_weight` > 0)."""
    serve_http = settings.http_enabled and inbox is None
    background = inbox is None  # the service itself, not a test
    watched = parse_watched(settings.watched_sources)  # a malformed entry stops the start
    async with AsyncExitStack() as stack:
        pool = None
        if inbox is None or (store is None and settings.vector_store == "pgvector"):
            from cairn_bus import PostgresInbox

            pool = await open_pool(settings)
            stack.push_async_callback(pool.close)
            if inbox is None:
                pg_inbox = PostgresInbox(pool)
                await pg_inbox.migrate()
                inbox = pg_inbox
                if priors is None and settings.prior_weight > 0:
                    from cairn_retriever.adapters.priors_postgres import PostgresPriorStore

                    pg_priors = PostgresPriorStore(pool)
                    await pg_priors.migrate()
                    priors = pg_priors
        if store is None:
            store = await stack.enter_async_context(open_store(settings, pool))
        if embedder is None:
            embedder = await asyncio.to_thread(load_embedder, settings)
        retriever = Retriever(
            embedder,
            store,
            search_config(settings),
            batch_window_ms=settings.query_batch_window_ms,
            batch_max=settings.query_batch_max,
        )
        http = None
        if serve_http:
            http = await stack.enter_async_context(
                serve_api(
                    settings, retriever, make_ingestor(settings, embedder, store), pool, publisher, auth
                )
            )
        deps = Deps(
            publisher=publisher,
            retriever=retriever,
            inbox=inbox,
            settings=settings,
            clock=clock or utc_now,
            http=http,
            priors=priors,
        )
        if background and (watched or priors is not None):
            ingestor = make_ingestor(settings, embedder, store)
            await stack.enter_async_context(
                in_background(upkeep(deps, ingestor, watched), "retriever-upkeep")
            )
        yield deps


@asynccontextmanager
async def serve_api(
    settings: Settings,
    retriever: Retriever,
    ingestor: Ingestor,
    pool: Any,
    publisher: Publisher,
    auth: AuthSettings | None = None,
) -> AsyncIterator[HttpServer]:
    """The ingestion and search API, keys checked against `auth_api_keys` on `pool` (or a pool of its
    own when None); the bootstrap key's creation is published through `publisher`."""
    from cairn_auth.serving import serving_api
    from cairn_retriever.api import create_app

    async with AsyncExitStack() as stack:
        if pool is None:
            from cairn_bus.postgres import create_pool

            pool = await create_pool(settings.postgres_dsn, 1, 2)
            stack.push_async_callback(pool.close)
        make_app = partial(create_app, settings, retriever, ingestor)
        yield await stack.enter_async_context(
            serving_api(settings, pool, publisher, make_app, name="retriever", auth=auth)
        )


def s3_of(settings: Settings) -> tuple[str, str, str, bool]:
    """(endpoint, access key, secret key, secure) of the S3 store, for s3:// sources."""
    return (
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        settings.s3_secure,
    )


async def upkeep(deps: Deps, ingestor: Ingestor, watched: Sequence[WatchedSource]) -> None:
    """What the service does beside consuming: scan the watched sources at start and every
    `source_scan_interval_s` (0: at start only), and purge served-chunk records past their retention
    every hour. A failing round is logged and the next one tries again."""
    settings = deps.settings
    loop = asyncio.get_running_loop()
    never = float("inf")
    next_scan = loop.time() if watched else never
    next_purge = loop.time() if deps.priors is not None else never
    while next_scan < never or next_purge < never:
        now = loop.time()
        if now >= next_scan:
            await scan_watched(watched, ingestor, deps.publisher, deps.clock, s3_of(settings))
            interval = settings.source_scan_interval_s
            next_scan = now + interval if interval > 0 else never
        if deps.priors is not None and now >= next_purge:
            try:
                cutoff = deps.clock() - timedelta(days=settings.served_retention_days)
                purged = await deps.priors.purge_served(cutoff)
                if purged:
                    log.info("served-chunk records purged", count=purged)
            except Exception as exc:  # the database may be down; the next round tries again
                log.warning("served-chunk purge failed", error=repr(exc))
            next_purge = now + PURGE_EVERY_S
        await asyncio.sleep(min(PURGE_EVERY_S, max(0.05, min(next_scan, next_purge) - loop.time())))
