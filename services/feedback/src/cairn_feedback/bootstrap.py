"""Builds the feedback service's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cairn_bus import Publisher
from cairn_bus.objects import ObjectStore
from cairn_feedback.ports import Repository
from cairn_feedback.settings import Settings

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring
    from cairn_feedback.auto_datasets import DatasetAutoBuilder


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """What the feedback service's handlers and dataset builds need."""

    repository: Repository
    objects: ObjectStore
    publisher: Publisher
    bucket: str = "cairn"
    clock: Callable[[], datetime] = utc_now
    keyring: Keyring | None = None
    """The tenants' data keys the repository seals payloads with (None: stored as they are)."""
    dataset_keyring: Keyring | None = None
    """The tenants' data keys in the object store, sealing dataset rows (shared with the tuner and
    the evaluator; `cairn_auth.object_keys`); None: dataset files are written as they are."""
    auto_datasets: DatasetAutoBuilder | None = None
    """The dataset policies at work (`CAIRN_DATASET_POLICY_DIR`); None: datasets are built by operators."""


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    repository: Repository | None = None,
    objects: ObjectStore | None = None,
    clock: Callable[[], datetime] | None = None,
    keyring: Keyring | None = None,
    dataset_keyring: Keyring | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service: with `repository` given (tests) that one, otherwise a PostgreSQL
    pool with the tables migrated, closed when the block exits; the S3 store of the settings unless
    `objects` is given. The PostgreSQL repository seals payloads when a master key is configured
    (`cairn_auth.encryption`)."""
    if objects is None:
        from cairn_bus.objects import S3ObjectStore

        objects = S3ObjectStore.from_settings(settings)
    now = clock or utc_now
    if repository is not None:
        deps = Deps(repository, objects, publisher, settings.s3_bucket, now, keyring, dataset_keyring)
        async with with_dataset_policies(settings, deps):
            yield deps
        return
    from cairn_bus.postgres import create_pool
    from cairn_feedback.adapters.postgres import PostgresRepository

    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    try:
        pg = PostgresRepository(pool) if keyring is None else PostgresRepository(pool, keyring)
        await pg.migrate()
        if pg.keyring is None:
            from cairn_observability import get_logger

            get_logger("cairn.feedback").warning(
                "no master key configured (CAIRN_MASTER_KEY): feedback payloads are stored unencrypted"
            )
        if dataset_keyring is None and pg.keyring is not None:
            from cairn_auth.object_keys import object_store_keyring

            dataset_keyring = object_store_keyring(objects, settings.s3_bucket, pg.keyring.master)
        deps = Deps(pg, objects, publisher, settings.s3_bucket, now, pg.keyring, dataset_keyring)
        async with with_dataset_policies(settings, deps):
            yield deps
    finally:
        await pool.close()


@asynccontextmanager
async def with_dataset_policies(settings: Settings, deps: Deps) -> AsyncIterator[None]:
    """With `settings.dataset_policy_dir`, the dataset policies run in the background while the block
    runs (`deps.auto_datasets`); raises PolicyFileError at start for a policy file that is not valid."""
    if not settings.dataset_policy_dir:
        yield
        return
    from cairn_bus.background import in_background
    from cairn_bus.policy_files import resolve_folder
    from cairn_feedback.auto_datasets import DatasetAutoBuilder, load_dataset_policies, policy_build

    folder = resolve_folder(settings.dataset_policy_dir, "CAIRN_DATASET_POLICY_DIR", __file__)
    policies = load_dataset_policies(folder)
    build_one = policy_build(
        deps.repository,
        deps.objects,
        deps.publisher,
        bucket=deps.bucket,
        clock=deps.clock,
        keyring=deps.dataset_keyring,
    )
    deps.auto_datasets = DatasetAutoBuilder(policies, build_one)
    from cairn_observability import get_logger

    get_logger("cairn.feedback").info(
        "dataset policies", folder=str(folder), datasets=[p.name for p in policies]
    )
    async with in_background(deps.auto_datasets.run(), "dataset-policies"):
        yield
