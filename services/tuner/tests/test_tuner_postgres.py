"""Against the real local stack: the repository suite on PostgreSQL; whole jobs with PostgreSQL and S3."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn_bus.objects import S3ObjectStore
from cairn_bus.postgres import create_pool
from cairn_events import ModelRegisteredV1
from cairn_events.artifacts import ADAPTER_MANIFEST, AdapterManifest
from cairn_tuner.adapters.peft_trainer import PeftTrainer
from cairn_tuner.adapters.postgres import PostgresJobRepository
from cairn_tuner.bootstrap import build
from cairn_tuner.deps import utc_now
from cairn_tuner.domain.jobs import JobState
from cairn_tuner.runner import JobRunner
from cairn_tuner.settings import Settings

from .conftest import FakeTrainer, job, lora, make_deps, progress, published, put_dataset, request
from .test_tuner_handlers import deliver
from .tuner_repository_behaviour import JobRepositoryBehaviour

pytestmark = pytest.mark.integration


@pytest.fixture
async def repo(fresh_database: str) -> AsyncIterator[PostgresJobRepository]:
    pool = await create_pool(fresh_database, 1, 8)
    repo = PostgresJobRepository(pool)
    await repo.migrate()
    await repo.migrate()  # idempotent
    yield repo
    await pool.close()


@pytest.fixture
def s3(local_stack: dict[str, str]) -> S3ObjectStore:
    env = {k.removeprefix("CAIRN_").lower(): v for k, v in local_stack.items() if k.startswith("CAIRN_S3_")}
    return S3ObjectStore.from_settings(Settings(**env))


class TestPostgresJobRepository(JobRepositoryBehaviour):
    """The behaviour suite on PostgreSQL (the `repo` fixture above)."""


async def test_a_job_runs_end_to_end_with_postgres_and_s3(
    repo: PostgresJobRepository, s3: S3ObjectStore, models_dir: Path
) -> None:
    dataset = f"it-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(put_dataset, s3, dataset)
    trainer = PeftTrainer(s3, bucket="cairn", models_dir=models_dir, code_version="git:test")
    deps = make_deps(repo, trainer)
    job_id = f"job-{dataset}"
    await deliver(deps, request(job_id, dataset_id=dataset, config=lora(max_steps=5)))
    await deliver(deps, request(job_id, dataset_id=dataset, config=lora(max_steps=5)))  # duplicate
    assert [j.job_id for j in await repo.list()] == [job_id]
    assert await JobRunner(deps).run_next()
    done = await repo.get(job_id)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert (done.step, done.total_steps, done.model_name, done.model_version) == (5, 5, "cairn-qa", 1)
    [event] = published(deps).events(ModelRegisteredV1.event_type)
    assert isinstance(event, ModelRegisteredV1)
    assert event.adapter_uri == f"s3://cairn/adapters/{job_id}/"
    assert event.job_id == job_id
    assert event.dataset_id == dataset
    assert event.metrics["steps"] == 5
    manifest = AdapterManifest.model_validate_json(
        await asyncio.to_thread(s3.get, event.adapter_uri + ADAPTER_MANIFEST)
    )
    assert manifest.metrics == event.metrics
    assert next(e.state for e in progress(deps)) == "queued"
    assert progress(deps)[-1].state == "succeeded"
    await asyncio.to_thread(s3.delete_prefix, event.adapter_uri)
    await asyncio.to_thread(s3.delete_prefix, f"s3://cairn/datasets/{dataset}/")


async def _run_until_terminal(deps: Any, job_id: str) -> Any:
    runner = JobRunner(deps)
    runner.start()
    found = None
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            found = await deps.repo.get(job_id)
            if found is not None and found.state.terminal:
                break
    finally:
        await runner.stop()
    return found


async def test_a_job_left_running_by_a_killed_worker_is_requeued_and_run_again(
    repo: PostgresJobRepository,
) -> None:
    await repo.create(job("crashed"))
    # the worker that claimed it two minutes ago was killed (kill -9): its heartbeat stopped then
    assert await repo.claim_next(utc_now() - timedelta(seconds=120)) is not None
    deps = make_deps(repo, FakeTrainer(steps=2), clock=utc_now, job_lease_s=60, max_attempts=2)
    done = await _run_until_terminal(deps, "crashed")
    assert done is not None
    assert (done.state, done.attempt, done.model_version) == (JobState.SUCCEEDED, 2, 1)
    states = [e.state for e in progress(deps)]
    assert states[0] == "queued"
    assert states[-1] == "succeeded"
    assert progress(deps)[0].message == "re-queued: worker lost heartbeat on attempt 1 of 2"


async def test_a_job_whose_worker_died_on_its_last_attempt_fails(repo: PostgresJobRepository) -> None:
    await repo.create(job("crashed"))
    assert await repo.claim_next(utc_now() - timedelta(seconds=120)) is not None
    trainer = FakeTrainer()
    deps = make_deps(repo, trainer, clock=utc_now, job_lease_s=60, max_attempts=1)
    done = await _run_until_terminal(deps, "crashed")
    assert done is not None
    assert (done.state, done.message) == (
        JobState.FAILED,
        "worker lost heartbeat after 1 attempts",
    )
    assert [(e.state, e.message) for e in progress(deps)] == [("failed", done.message)]
    assert trainer.calls == []


async def test_the_service_wiring_runs_a_requested_job(
    fresh_database: str, local_stack: dict[str, str]
) -> None:
    """bootstrap.build with PostgreSQL: the handler queues, the background runner trains (fake trainer)."""
    settings = Settings(postgres_dsn=fresh_database, poll_interval_s=0.05, heartbeat_s=0.05, code_version="t")
    publisher = make_deps().publisher
    async with build(settings, publisher, trainer=FakeTrainer(steps=2)) as deps:
        await deliver(deps, request("wired"))
        for _ in range(200):
            await asyncio.sleep(0.05)
            found = await deps.repo.get("wired")
            if found is not None and found.state.terminal:
                break
    assert found is not None
    assert found.state is JobState.SUCCEEDED
    assert [type(e).__name__ for e in published(deps).events()][-2:] == [
        "ModelRegisteredV1",
        "TuningProgressedV1",
    ]
