"""The JobRepository behaviour suite: what every implementation promises (memory and PostgreSQL run it).

Not collected by itself: a backend subclasses `JobRepositoryBehaviour` as a `Test...` class with a `repo`
fixture giving a new, empty repository.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cairn_tuner.domain.continual import ProductionVersion
from cairn_tuner.domain.jobs import JobState, TrainedAdapter
from cairn_tuner.ports import JobRepository

from .conftest import T0, job, lora


class JobRepositoryBehaviour:
    """What every JobRepository promises."""

    async def test_create_is_idempotent_and_round_trips(self, repo: JobRepository) -> None:
        _created, new = await repo.create(job("j1", config=lora(max_steps=None, target_modules=["q_proj"])))
        again, new_again = await repo.create(job("j1", requested_by="ben"))
        assert (new, new_again) == (True, False)
        assert again.requested_by == "ana"
        assert again.state is JobState.QUEUED
        assert again.attempt == 0
        found = await repo.get("j1")
        assert found is not None
        assert found.config == lora(max_steps=None, target_modules=["q_proj"])
        assert found.requested_at == T0
        assert found.dataset_version == 1
        assert not found.cancel_requested
        assert await repo.get("nope") is None

    async def test_claims_take_the_oldest_queued_job_once(self, repo: JobRepository) -> None:
        await repo.create(job("late", requested_at=T0 + timedelta(seconds=5)))
        await repo.create(job("early"))
        first = await repo.claim_next(T0)
        second = await repo.claim_next(T0)
        assert first is not None
        assert second is not None
        assert (first.job_id, first.state, first.attempt, first.heartbeat_at) == (
            "early",
            JobState.RUNNING,
            1,
            T0,
        )
        assert second.job_id == "late"
        assert await repo.claim_next(T0) is None
        assert [j.job_id for j in await repo.list()] == ["late", "early"]

    async def test_concurrent_claims_never_share_a_job(self, repo: JobRepository) -> None:
        for i in range(4):
            await repo.create(job(f"j{i}", requested_at=T0 + timedelta(seconds=i)))
        claimed = await asyncio.gather(*(repo.claim_next(T0) for _ in range(6)))
        ids = [j.job_id for j in claimed if j is not None]
        assert sorted(ids) == ["j0", "j1", "j2", "j3"]

    async def test_heartbeat_and_finish_need_the_current_attempt(self, repo: JobRepository) -> None:
        await repo.create(job("j1"))
        await repo.claim_next(T0)
        beat = await repo.heartbeat("j1", 1, T0 + timedelta(seconds=5), 3, 10, 1.25)
        assert beat is not None
        assert (beat.step, beat.total_steps, beat.loss) == (3, 10, 1.25)
        assert await repo.heartbeat("j1", 2, T0, 3, 10, 1.0) is None
        assert await repo.finish("j1", 2, JobState.FAILED, T0) is None
        adapter = TrainedAdapter("s3://cairn/adapters/j1/", {}, {"train_loss": 0.5}, {}, "test")
        reg, _ = await repo.allocate_version(
            "cairn-qa", "base", T0, job_id="j1", adapter_uri=adapter.adapter_uri
        )
        done = await repo.finish(
            "j1", 1, JobState.SUCCEEDED, T0, message="ok", adapter=adapter, registration=reg
        )
        assert done is not None
        assert done.state is JobState.SUCCEEDED
        assert done.message == "ok"
        assert (done.adapter_uri, done.metrics, done.model_name, done.model_version) == (
            "s3://cairn/adapters/j1/",
            {"train_loss": 0.5},
            "cairn-qa",
            1,
        )
        assert await repo.heartbeat("j1", 1, T0, 3, 10, 1.0) is None  # final: nothing holds it

    async def test_cancel_requests_and_release(self, repo: JobRepository) -> None:
        await repo.create(job("j1"))
        asked = await repo.request_cancel("j1", T0)
        assert asked is not None
        assert asked.cancel_requested
        assert asked.state is JobState.QUEUED
        assert await repo.request_cancel("nope", T0) is None
        claimed = await repo.claim_next(T0)
        assert claimed is not None
        assert claimed.cancel_requested
        released = await repo.release("j1", 1, T0)
        assert released is not None
        assert (released.state, released.attempt) == (JobState.QUEUED, 0)
        await repo.claim_next(T0)
        await repo.finish("j1", 1, JobState.CANCELLED, T0)
        ended = await repo.request_cancel("j1", T0)
        assert ended is not None
        assert ended.state is JobState.CANCELLED

    async def test_expired_leases_requeue_then_fail(self, repo: JobRepository) -> None:
        await repo.create(job("j1"))
        await repo.create(job("fresh", requested_at=T0 + timedelta(seconds=1)))
        await repo.claim_next(T0)
        await repo.claim_next(T0 + timedelta(seconds=100))
        [requeued] = await repo.expire_leases(T0 + timedelta(seconds=61), 60, 2)
        assert (requeued.job_id, requeued.state, requeued.attempt) == ("j1", JobState.QUEUED, 1)
        await repo.claim_next(T0 + timedelta(seconds=62))
        [failed] = await repo.expire_leases(T0 + timedelta(seconds=130), 60, 2)
        assert (failed.job_id, failed.state, failed.message) == (
            "j1",
            JobState.FAILED,
            "worker lost heartbeat after 2 attempts",
        )
        fresh = await repo.get("fresh")
        assert fresh is not None
        assert fresh.state is JobState.RUNNING

    async def test_a_lost_job_whose_cancel_was_asked_ends_cancelled(self, repo: JobRepository) -> None:
        await repo.create(job("j1"))
        await repo.claim_next(T0)
        await repo.request_cancel("j1", T0 + timedelta(seconds=1))
        [cancelled] = await repo.expire_leases(T0 + timedelta(seconds=61), 60, 2)
        assert (cancelled.job_id, cancelled.state) == ("j1", JobState.CANCELLED)
        assert cancelled.message
        assert "cancel" in cancelled.message
        assert await repo.claim_next(T0 + timedelta(seconds=62)) is None

    async def test_versions_are_dense_per_model_and_idempotent(self, repo: JobRepository) -> None:
        base, new = await repo.allocate_version("cairn-qa", "SmolLM2", T0)
        tuned, _ = await repo.allocate_version("cairn-qa", "SmolLM2", T0, job_id="j1", adapter_uri="s3://a/")
        other, _ = await repo.allocate_version("other", "SmolLM2", T0, job_id="j2")
        again, new_again = await repo.allocate_version(
            "cairn-qa", "SmolLM2", T0 + timedelta(hours=1), job_id="j1"
        )
        base_again, base_new = await repo.allocate_version("cairn-qa", "SmolLM2", T0)
        assert (base.version, tuned.version, other.version, again.version, base_again.version) == (
            1,
            2,
            1,
            2,
            1,
        )
        assert (new, new_again, base_new) == (True, False, False)
        assert (base.job_id, base.adapter_uri, tuned.adapter_uri, again.registered_at) == (
            None,
            None,
            "s3://a/",
            T0,
        )
        assert not base_again.published
        await repo.mark_published("cairn-qa", 1)
        published, _ = await repo.allocate_version("cairn-qa", "SmolLM2", T0)
        assert published.published

    async def test_a_quantized_base_is_its_own_version_once(self, repo: JobRepository) -> None:
        full, _ = await repo.allocate_version("cairn-qa", "SmolLM2", T0)
        int8, new = await repo.allocate_version("cairn-qa", "SmolLM2", T0, quantization="int8")
        again, new_again = await repo.allocate_version("cairn-qa", "SmolLM2", T0, quantization="int8")
        full_again, _ = await repo.allocate_version("cairn-qa", "SmolLM2", T0)
        assert (full.version, int8.version, again.version, full_again.version) == (1, 2, 2, 1)
        assert (new, new_again) == (True, False)
        assert (full.quantization, int8.quantization, again.quantization) == (None, "int8", "int8")

    async def test_concurrent_allocations_stay_dense(self, repo: JobRepository) -> None:
        regs = await asyncio.gather(
            *(repo.allocate_version("cairn-qa", "b", T0, job_id=f"j{i}") for i in range(5))
        )
        assert sorted(r.version for r, _ in regs) == [1, 2, 3, 4, 5]

    async def test_production_is_the_version_promoted_there_last_and_still_there(
        self, repo: JobRepository
    ) -> None:
        assert await repo.production("cairn-qa") is None
        uri2, uri3 = "s3://cairn/adapters/j2/", "s3://cairn/adapters/j3/"
        await repo.record_promotion("cairn-qa", 2, "staging", uri2, T0)
        assert await repo.production("cairn-qa") is None
        await repo.record_promotion("cairn-qa", 2, "production", uri2, T0 + timedelta(seconds=1))
        await repo.record_promotion("cairn-qa", 3, "production", uri3, T0 + timedelta(seconds=2))
        await repo.record_promotion("other", 9, "production", None, T0 + timedelta(seconds=3))
        assert await repo.production("cairn-qa") == ProductionVersion("cairn-qa", 3, uri3)
        # a rollback: 2 back to production, 3 archived
        await repo.record_promotion("cairn-qa", 2, "production", uri2, T0 + timedelta(seconds=4))
        await repo.record_promotion("cairn-qa", 3, "archived", uri3, T0 + timedelta(seconds=4))
        assert await repo.production("cairn-qa") == ProductionVersion("cairn-qa", 2, uri2)
        # an older promotion delivered again changes nothing
        await repo.record_promotion("cairn-qa", 3, "production", uri3, T0 + timedelta(seconds=2))
        assert await repo.production("cairn-qa") == ProductionVersion("cairn-qa", 2, uri2)
        assert await repo.production("other") == ProductionVersion("other", 9, None)

    async def test_production_takes_the_adapter_of_the_tuners_own_registration(
        self, repo: JobRepository
    ) -> None:
        registration, _ = await repo.allocate_version(
            "cairn-qa", "tiny", T0, job_id="j1", adapter_uri="s3://cairn/adapters/j1/"
        )
        await repo.record_promotion("cairn-qa", registration.version, "production", None, T0)
        assert await repo.production("cairn-qa") == ProductionVersion(
            "cairn-qa", registration.version, "s3://cairn/adapters/j1/"
        )
