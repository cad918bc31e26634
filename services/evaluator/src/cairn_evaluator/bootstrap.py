"""Builds the evaluator's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cairn_bus import Publisher
from cairn_bus.objects import ObjectStore
from cairn_evaluator.adapters.memory_online import InMemoryOnlineStore
from cairn_evaluator.observer import OnlineObserver
from cairn_evaluator.ports import Embedder, OnlineStore, Registry, RunStore, SuiteSource
from cairn_evaluator.settings import Settings

if TYPE_CHECKING:
    from cairn_evaluator.adapters.http import HttpServer
from cairn_observability import get_logger

log = get_logger("cairn.evaluator")


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def repo_root() -> Path:
    """The repository root when running from a checkout (where `infra/` is), else the working folder."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "infra").is_dir() and (parent / "services").is_dir():
            return parent
    return Path.cwd()


@dataclass
class Deps:
    """What the evaluator's handlers, CLI and periodic checks need."""

    registry: Registry
    runs: RunStore
    suites: SuiteSource
    objects: ObjectStore
    publisher: Publisher
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    finishing: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a run is being finished, so the periodic check and a handler never race in-process."""
    online: OnlineStore = field(default_factory=InMemoryOnlineStore)
    """Live traffic records and alert firings (the online part)."""
    embedder: Embedder | None = None
    """Embeds answers, chunks and questions; None: lexical groundedness and no request embeddings."""
    observer: OnlineObserver | None = None
    """Runs live-traffic observations off the consumer's path (the service); none: inline (tests, CLI)."""
    http: HttpServer | None = None
    """Where the registry API listens, when the service serves it (`build(..., serve_http=True)`)."""


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    registry: Registry | None = None,
    runs: RunStore | None = None,
    suites: SuiteSource | None = None,
    objects: ObjectStore | None = None,
    clock: Callable[[], datetime] | None = None,
    periodic_check_s: float | None = 30.0,
    online: OnlineStore | None = None,
    embedder: Embedder | None = None,
    serve_http: bool = False,
) -> AsyncIterator[Deps]:
    """Deps for the running service (or the CLI).

    With `registry` and `runs` given (tests): those, in-memory objects unless given, no periodic
    task. Otherwise a PostgreSQL pool (tables migrated), S3 through `minio`, suites from
    `suites_dir`, and, with `periodic_check_s`, a task that ends overdue runs even when no
    responses arrive, and one that checks drift every `drift_interval_s`. The embedder (unless given)
    follows `groundedness_embedder` and loads on first use.
    """
    from cairn_evaluator.adapters.suite_files import SuiteFiles

    suite_source = suites or SuiteFiles(settings.suites_dir, repo_root())
    now = clock or utc_now
    if registry is not None and runs is not None:
        from cairn_bus.objects import InMemoryObjectStore

        yield Deps(
            registry,
            runs,
            suite_source,
            objects or InMemoryObjectStore(),
            publisher,
            settings,
            now,
            online=online or InMemoryOnlineStore(),
            embedder=embedder,
        )
        return
    from cairn_bus.objects import S3ObjectStore
    from cairn_evaluator.adapters.pg_online import PostgresOnlineStore
    from cairn_evaluator.adapters.pg_registry import PostgresRegistry
    from cairn_evaluator.adapters.pg_runs import PostgresRunStore
    from cairn_evaluator.adapters.pg_schema import create_pool, migrate

    async with AsyncExitStack() as stack:
        pool = await create_pool(
            settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
        )
        stack.push_async_callback(pool.close)
        await migrate(pool)
        deps = Deps(
            registry or PostgresRegistry(pool),
            runs or PostgresRunStore(pool),
            suite_source,
            objects or S3ObjectStore.from_settings(settings),
            publisher,
            settings,
            now,
            online=online or PostgresOnlineStore(pool),
            embedder=embedder or make_embedder(settings),
        )
        load = getattr(deps.embedder, "load", None)
        if periodic_check_s and callable(load):
            # the service loads the embedder before it is ready, so the first live request does not stall
            # the consumer (and with it registrations and evaluation answers) for the model's load time
            await asyncio.to_thread(load)
        if periodic_check_s:
            deps.observer = OnlineObserver()
            deps.observer.start()
            stack.push_async_callback(deps.observer.stop)
            task = asyncio.create_task(_check_periodically(deps, periodic_check_s))
            stack.push_async_callback(_cancel, task)
        if periodic_check_s and settings.drift_interval_s:
            drift = asyncio.create_task(_check_drift_periodically(deps, settings.drift_interval_s))
            stack.push_async_callback(_cancel, drift)
        if serve_http and settings.http_enabled:  # the service, not the CLI, serves the registry API
            from cairn_evaluator.api import serve_api

            deps.http = await stack.enter_async_context(serve_api(deps, pool))
        yield deps


def make_embedder(settings: Settings) -> Embedder:
    """all-MiniLM-L6-v2 (loaded on first use) or, with `groundedness_embedder=lexical`, hashed words."""
    if settings.groundedness_embedder == "lexical":
        from cairn_evaluator.adapters.hashing import HashingEmbedder

        return HashingEmbedder()
    from cairn_evaluator.adapters.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _check_periodically(deps: Deps, every_s: float) -> None:
    from cairn_evaluator.completion import check_runs

    while True:
        await asyncio.sleep(every_s)
        try:
            await check_runs(deps)
        except Exception as exc:  # keep checking; the next batch or tick tries again
            log.warning("run check failed", error=repr(exc))


async def _check_drift_periodically(deps: Deps, every_s: float) -> None:
    from cairn_evaluator.quality import check_drift

    while True:
        await asyncio.sleep(every_s)
        try:
            await check_drift(deps)
        except Exception as exc:  # keep checking; the next tick tries again
            log.warning("drift check failed", error=repr(exc))
