"""The job runner with a fake trainer: outcomes, progress events, cancellation, leases, shutdown."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from cairn_events import ModelRegisteredV1, Quantization, TuningProgressedV1
from cairn_tuner.adapters.memory import InMemoryJobRepository
from cairn_tuner.domain.continual import ProductionVersion
from cairn_tuner.domain.jobs import JobState, TrainingError
from cairn_tuner.registration import register_base
from cairn_tuner.runner import JobRunner

from .conftest import T0, Clock, FakeTrainer, cancel_in_memory, job, lora, make_deps, progress, published


def registered(deps: object) -> list[ModelRegisteredV1]:
    events = published(deps).events(ModelRegisteredV1.event_type)  # type: ignore[arg-type]
    return [e for e in events if isinstance(e, ModelRegisteredV1)]


async def test_a_job_runs_to_success_and_registers_the_next_version() -> None:
    deps = make_deps(trainer=FakeTrainer(steps=3))
    await deps.repo.create(job("job-1"))
    await deps.repo.create(job("job-2"))
    runner = JobRunner(deps)
    assert await runner.run_next()
    assert await runner.run_next()
    assert not await runner.run_next()
    first = await deps.repo.get("job-1")
    assert first is not None
    assert (first.state, first.attempt, first.model_name, first.model_version) == (
        JobState.SUCCEEDED,
        1,
        "cairn-qa",
        1,
    )
    assert first.adapter_uri == "s3://cairn/adapters/job-1/"
    assert first.metrics["steps"] == 3.0
    states = [(e.job_id, e.state, e.step) for e in progress(deps) if e.job_id == "job-1"]
    assert states[0] == ("job-1", "running", 0)
    assert states[-2:] == [
        ("job-1", "running", 3),
        ("job-1", "succeeded", 3),
    ]
    steps = [step for _, _, step in states[:-1]]
    assert steps == sorted(set(steps))  # running steps in order, each once
    [one, two] = registered(deps)
    assert (one.model_name, one.version, one.job_id, two.version, two.job_id) == (
        "cairn-qa",
        1,
        "job-1",
        2,
        "job-2",
    )
    assert one.adapter_uri == "s3://cairn/adapters/job-1/"
    assert (one.dataset_id, one.dataset_version, one.base_model) == ("support-qa", 1, "cairn-tiny-chat")
    assert one.metrics["final_loss"] == 2.0 / 3
    assert one.config == {"rank": 4}
    assert one.code_version == "test"
    assert len({m.meta.id for m in published(deps).messages}) == len(published(deps).messages)


async def test_progress_is_throttled_but_the_last_step_is_always_sent() -> None:
    deps = make_deps(trainer=FakeTrainer(steps=50), progress_interval_s=30.0)
    await deps.repo.create(job())
    await JobRunner(deps).run_next()
    running = [e for e in progress(deps) if e.state == "running"]
    assert len(running) <= 3
    assert running[-1].step == 50
    assert running[-1].total_steps == 50
    assert running[-1].loss == 2.0 / 50
    assert [e.state for e in progress(deps)][-1] == "succeeded"


async def test_a_cancelled_job_stops_between_steps() -> None:
    repo = InMemoryJobRepository()
    trainer = FakeTrainer(steps=500, delay_s=0.005, on_step_hook=cancel_in_memory(repo, at_step=3))
    deps = make_deps(repo, trainer)
    await repo.create(job())
    await JobRunner(deps).run_next()
    done = await repo.get("job-1")
    assert done is not None
    assert done.state is JobState.CANCELLED
    assert done.step < 500
    assert done.message is not None
    assert done.message.startswith("cancelled after step")
    last = progress(deps)[-1]
    assert (last.state, last.message) == ("cancelled", done.message)
    assert registered(deps) == []


async def test_a_job_cancelled_while_queued_never_trains() -> None:
    trainer = FakeTrainer()
    deps = make_deps(trainer=trainer)
    await deps.repo.create(job())
    await deps.repo.request_cancel("job-1", Clock()())
    await JobRunner(deps).run_next()
    done = await deps.repo.get("job-1")
    assert done is not None
    assert done.state is JobState.CANCELLED
    assert trainer.calls == []
    assert [e.state for e in progress(deps)] == ["cancelled"]


async def test_a_training_error_fails_the_job_with_its_message() -> None:
    message = "base model x not found in /m/x: run `cairn inference prepare` to convert it"
    deps = make_deps(trainer=FakeTrainer(error=TrainingError(message)))
    await deps.repo.create(job())
    await JobRunner(deps).run_next()
    done = await deps.repo.get("job-1")
    assert done is not None
    assert (done.state, done.message) == (JobState.FAILED, message)
    last = progress(deps)[-1]
    assert (last.state, last.message, last.step) == ("failed", message, 1)


async def test_an_unexpected_error_fails_the_job_too() -> None:
    deps = make_deps(trainer=FakeTrainer(error=RuntimeError("boom")))
    await deps.repo.create(job())
    await JobRunner(deps).run_next()
    done = await deps.repo.get("job-1")
    assert done is not None
    assert done.state is JobState.FAILED
    assert done.message == "training failed: RuntimeError('boom')"


async def test_an_expired_lease_requeues_then_fails_the_job() -> None:
    clock = Clock()
    repo = InMemoryJobRepository()
    deps = make_deps(repo, clock=clock, job_lease_s=60, max_attempts=2)
    runner = JobRunner(deps)
    await repo.create(job())
    claimed = await repo.claim_next(clock())  # a worker claims it, then dies (no heartbeat)
    assert claimed is not None
    assert claimed.attempt == 1
    clock.advance(59)
    assert await runner.expire_leases() == []
    clock.advance(2)
    [requeued] = await runner.expire_leases()
    assert (requeued.state, requeued.attempt) == (JobState.QUEUED, 1)
    assert await repo.claim_next(clock()) is not None  # attempt 2, lost again
    clock.advance(61)
    [failed] = await runner.expire_leases()
    assert (failed.state, failed.attempt, failed.message) == (
        JobState.FAILED,
        2,
        "worker lost heartbeat after 2 attempts",
    )
    events = progress(deps)
    assert [e.state for e in events] == ["queued", "failed"]
    assert events[0].message == "re-queued: worker lost heartbeat on attempt 1 of 2"
    assert events[1].message == "worker lost heartbeat after 2 attempts"
    assert await runner.expire_leases() == []


async def test_a_live_heartbeat_keeps_the_lease() -> None:
    clock = Clock()
    repo = InMemoryJobRepository()
    await repo.create(job())
    claimed = await repo.claim_next(clock())
    assert claimed is not None
    clock.advance(50)
    assert await repo.heartbeat("job-1", 1, clock(), 3, 10, 1.5) is not None
    clock.advance(50)
    assert await repo.expire_leases(clock(), 60, 2) == []
    assert await repo.heartbeat("job-1", 2, clock(), 3, 10, 1.5) is None  # not this attempt's job


async def test_a_job_whose_lease_was_taken_over_is_left_alone() -> None:
    repo = InMemoryJobRepository()

    def lose_lease(job_: object, step: int) -> None:
        if step == 2:  # another worker re-queued it meanwhile
            repo.jobs["job-1"] = replace(repo.jobs["job-1"], state=JobState.QUEUED)

    deps = make_deps(repo, FakeTrainer(steps=400, delay_s=0.005, on_step_hook=lose_lease))
    await repo.create(job())
    await JobRunner(deps).run_next()
    left = await repo.get("job-1")
    assert left is not None
    assert left.state is JobState.QUEUED
    assert [e.state for e in progress(deps)].count("running") >= 1
    assert not [e for e in progress(deps) if e.state in {"succeeded", "failed", "cancelled"}]


async def test_stopping_the_runner_puts_the_running_job_back() -> None:
    trainer = FakeTrainer(steps=10_000, delay_s=0.002)
    deps = make_deps(trainer=trainer)
    await deps.repo.create(job())
    runner = JobRunner(deps)
    runner.start()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if any(e.state == "running" and e.step > 0 for e in progress(deps)):
            break
    await runner.stop(timeout_s=10)
    back = await deps.repo.get("job-1")
    assert back is not None
    assert (back.state, back.attempt) == (JobState.QUEUED, 0)
    assert progress(deps)[-1].state == "queued"


async def test_the_runner_task_picks_up_queued_jobs_and_survives_errors() -> None:
    deps = make_deps(trainer=FakeTrainer(steps=2))
    runner = JobRunner(deps)
    runner.start()
    await deps.repo.create(job())
    deps.wakeup.set()
    for _ in range(200):
        await asyncio.sleep(0.01)
        done = await deps.repo.get("job-1")
        if done is not None and done.state.terminal:
            break
    await runner.stop()
    assert done is not None
    assert done.state is JobState.SUCCEEDED


async def test_register_base_allocates_once() -> None:
    deps = make_deps()
    reg, announced = await register_base(
        deps.repo, deps.publisher, "cairn-qa", "SmolLM2-135M-Instruct", "v1", Clock()()
    )
    assert (reg.version, announced) == (1, True)
    again, announced = await register_base(
        deps.repo, deps.publisher, "cairn-qa", "SmolLM2-135M-Instruct", "v1", Clock()()
    )
    assert (again.version, announced) == (1, False)
    [event] = registered(deps)
    assert (event.model_name, event.version, event.base_model) == ("cairn-qa", 1, "SmolLM2-135M-Instruct")
    assert (event.adapter_uri, event.job_id, event.config, event.metrics, event.code_version) == (
        None,
        None,
        {},
        {},
        "v1",
    )
    other, announced = await register_base(
        deps.repo, deps.publisher, "cairn-qa", "other-base", "v1", Clock()()
    )
    assert (other.version, announced) == (2, True)
    assert event.quantization is None


async def test_a_quantized_base_is_registered_with_its_quantization() -> None:
    deps = make_deps()
    await register_base(deps.repo, deps.publisher, "cairn-qa", "SmolLM2-135M-Instruct", "v1", Clock()())
    reg, announced = await register_base(
        deps.repo, deps.publisher, "cairn-qa", "SmolLM2-135M-Instruct", "v1", Clock()(), "int8"
    )
    assert (reg.version, reg.quantization, announced) == (2, "int8", True)
    assert [(e.version, e.quantization) for e in registered(deps)] == [(1, None), (2, Quantization.INT8)]


async def test_registration_is_idempotent_per_job() -> None:
    deps = make_deps(trainer=FakeTrainer(steps=1))
    await deps.repo.create(job())
    await JobRunner(deps).run_next()
    reg, created = await deps.repo.allocate_version("cairn-qa", "cairn-tiny-chat", Clock()(), job_id="job-1")
    assert (reg.version, created) == (1, False)
    assert TuningProgressedV1.event_type in {m.meta.type for m in published(deps).messages}


async def test_a_production_job_gets_the_production_adapter_and_says_where_it_starts() -> None:
    trainer = FakeTrainer(steps=1)
    deps = make_deps(trainer=trainer)
    await deps.repo.record_promotion("cairn-qa", 2, "production", "s3://cairn/adapters/job-0/", T0)
    await deps.repo.record_promotion("other", 5, "production", "s3://cairn/adapters/x/", T0)
    await deps.repo.create(job("job-1", config=lora(start_from="production", replay_fraction=0.5)))
    await deps.repo.create(job("job-2"))
    runner = JobRunner(deps)
    assert await runner.run_next()
    assert await runner.run_next()
    [continual, fresh] = trainer.starts
    assert continual is not None
    assert fresh is not None
    assert continual.parent == ProductionVersion("cairn-qa", 2, "s3://cairn/adapters/job-0/")
    assert continual.replay_fraction == 0.5
    assert fresh.parent is None
    first = {e.job_id: e.message for e in progress(deps) if e.state == "running" and e.step == 0}
    assert first == {
        "job-1": "starting from production adapter cairn-qa:2, replaying 0.5 of its training rows",
        "job-2": "starting from the base model cairn-tiny-chat",
    }


async def test_a_production_job_without_production_starts_from_the_base() -> None:
    trainer = FakeTrainer(steps=1)
    deps = make_deps(trainer=trainer)
    await deps.repo.create(job("job-1", config=lora(start_from="production")))
    assert await JobRunner(deps).run_next()
    [start] = trainer.starts
    assert start is not None
    assert start.parent is None
    [running] = [e for e in progress(deps) if e.state == "running" and e.step == 0]
    assert (
        running.message == "starting from the base model cairn-tiny-chat: cairn-qa has no production version"
    )
    done = await deps.repo.get("job-1")
    assert done is not None
    assert done.state is JobState.SUCCEEDED
