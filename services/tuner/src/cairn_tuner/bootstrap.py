"""Builds the tuner's dependencies from settings and runs its job runner; tests pass fakes as overrides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

from pydantic import ValidationError

from cairn_bus import Publisher
from cairn_bus.objects import ObjectStore
from cairn_bus.policy_files import PolicyFileError, TenantPolicyFiles, resolve_folder, validation_problems
from cairn_observability import get_logger
from cairn_tuner.deps import Deps, utc_now
from cairn_tuner.domain.tune_policy import TunePolicy
from cairn_tuner.ports import JobRepository, Trainer
from cairn_tuner.runner import JobRunner
from cairn_tuner.settings import Settings

log = get_logger("cairn.tuner")


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    repo: JobRepository | None = None,
    store: ObjectStore | None = None,
    trainer: Trainer | None = None,
    clock: Callable[[], datetime] | None = None,
    run_jobs: bool = True,
) -> AsyncIterator[Deps]:
    """Deps for the running service, with the job runner running in the background until the block exits
    (`run_jobs=False`: no runner).

    Without `repo`, a PostgreSQL pool (tables migrated); without `store`, S3 from the settings; without
    `trainer`, the PEFT trainer on the base model folders under `settings.resolved_models_dir()`,
    opening sealed dataset rows when a master key is configured (`cairn_auth.object_keys`).
    """
    from cairn_tuner.adapters.code_version import detect_code_version

    now = clock or utc_now
    code_version = settings.code_version
    if not code_version:
        code_version = await asyncio.to_thread(detect_code_version)
    async with AsyncExitStack() as stack:
        if repo is None:
            from cairn_bus.postgres import create_pool
            from cairn_tuner.adapters.postgres import PostgresJobRepository

            pool = await create_pool(
                settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
            )
            stack.push_async_callback(pool.close)
            pg = PostgresJobRepository(pool)
            await pg.migrate()
            repo = pg
        if trainer is None:
            from cairn_auth.object_keys import object_store_keyring
            from cairn_bus.objects import S3ObjectStore
            from cairn_tuner.adapters.peft_trainer import PeftTrainer

            store = store or S3ObjectStore.from_settings(settings)
            trainer = PeftTrainer(
                store,
                bucket=settings.s3_bucket,
                models_dir=settings.resolved_models_dir(),
                code_version=code_version,
                max_seq_len=settings.max_seq_len,
                torch_threads=settings.torch_threads,
                clock=now,
                keyring=object_store_keyring(store, settings.s3_bucket),
            )
        deps = Deps(
            settings=settings,
            repo=repo,
            publisher=publisher,
            trainer=trainer,
            code_version=code_version,
            clock=now,
            tune_policies=tune_policies(settings),
        )
        if run_jobs:
            runner = JobRunner(deps)
            runner.start()
            stack.push_async_callback(runner.stop)
        yield deps


def tune_policies(settings: Settings) -> TenantPolicyFiles[TunePolicy] | None:
    """The per-dataset tuning policies of `settings.tune_policy_dir`, every file validated now (raises
    PolicyFileError naming the file and field at fault); None when the setting is empty."""
    if not settings.tune_policy_dir:
        return None
    folder = resolve_folder(settings.tune_policy_dir, "CAIRN_TUNE_POLICY_DIR", __file__)
    files = TenantPolicyFiles(folder, TunePolicy)
    policies = files.validate_all()
    for policy in policies:
        try:
            policy.lora_config(settings.default_lora_config())
        except ValidationError as exc:
            raise PolicyFileError(files.path(policy.name), validation_problems(exc)) from exc
    log.info("tuning policies", folder=str(folder), datasets=[p.name for p in policies])
    return files
