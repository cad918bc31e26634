"""Builds the evaluator's dependencies from settings; tests pass fakes as overrides.

`build` starts nothing in the background: the service (`app.serve_evaluator`) adds the periodic
checks, the live-traffic observer and the registry API around it; the CLI uses it as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cairn_bus import Publisher
from cairn_bus.objects import ObjectStore
from cairn_evaluator.adapters.memory_online import InMemoryOnlineStore
from cairn_evaluator.adapters.memory_shadow import InMemoryShadowStore
from cairn_evaluator.adapters.suite_files import SuiteFiles
from cairn_evaluator.deps import Deps, utc_now
from cairn_evaluator.ports import Embedder, OnlineStore, Registry, RunStore, ShadowStore, SuiteSource
from cairn_evaluator.settings import Settings

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring


def repo_root() -> Path:
    """The repository root when running from a checkout (where `infra/` is), else the working folder."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "infra").is_dir() and (parent / "services").is_dir():
            return parent
    return Path.cwd()


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
    online: OnlineStore | None = None,
    embedder: Embedder | None = None,
    shadows: ShadowStore | None = None,
    dataset_keyring: Keyring | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the service or the CLI.

    With `registry` and `runs` given (tests): those, in-memory objects, online and shadow stores unless given,
    no pool. Otherwise a PostgreSQL pool (tables migrated; closed when the block exits), S3 through
    `minio`, and suites from `suites_dir`. The embedder (unless given) follows `groundedness_embedder`
    and loads on first use. Sealed held-out rows open with `dataset_keyring`; without it, in the
    service, the object-store keyring when a master key is configured (`cairn_auth.object_keys`).
    """
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
            shadows=shadows or InMemoryShadowStore(),
            embedder=embedder,
            dataset_keyring=dataset_keyring,
        )
        return
    from cairn_auth.object_keys import object_store_keyring
    from cairn_bus.objects import S3ObjectStore
    from cairn_bus.postgres import create_pool
    from cairn_evaluator.adapters.pg_online import PostgresOnlineStore
    from cairn_evaluator.adapters.pg_registry import PostgresRegistry
    from cairn_evaluator.adapters.pg_runs import PostgresRunStore
    from cairn_evaluator.adapters.pg_schema import migrate
    from cairn_evaluator.adapters.pg_shadow import PostgresShadowStore

    objects = objects or S3ObjectStore.from_settings(settings)
    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    try:
        await migrate(pool)
        yield Deps(
            registry or PostgresRegistry(pool),
            runs or PostgresRunStore(pool),
            suite_source,
            objects,
            publisher,
            settings,
            now,
            online=online or PostgresOnlineStore(pool),
            shadows=shadows or PostgresShadowStore(pool),
            embedder=embedder or make_embedder(settings),
            pool=pool,
            dataset_keyring=dataset_keyring or object_store_keyring(objects, settings.s3_bucket),
        )
    finally:
        await pool.close()


def make_embedder(settings: Settings) -> Embedder:
    """all-MiniLM-L6-v2 (loaded on first use) or, with `groundedness_embedder=lexical`, hashed words."""
    if settings.groundedness_embedder == "lexical":
        from cairn_evaluator.adapters.hashing import HashingEmbedder

        return HashingEmbedder()
    from cairn_embedding import MiniLMEmbedder

    return MiniLMEmbedder(eager=False)
