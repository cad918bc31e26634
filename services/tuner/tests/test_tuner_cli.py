"""`cairn tune` through typer's CliRunner: in-memory parts, then PostgreSQL and the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cairn_bus import EventMeta, InMemoryPublisher, Publisher
from cairn_bus.kafka import ensure_topics
from cairn_events import AdminActionRecordedV1, Event, ModelRegisteredV1, TuningRequestedV1, load_topics
from cairn_testing.events import expect_events
from cairn_tuner import cli
from cairn_tuner.adapters.memory import InMemoryJobRepository
from cairn_tuner.domain.jobs import JobState
from cairn_tuner.ports import JobRepository
from cairn_tuner.settings import Settings

from .conftest import T0, job


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result: Result = runner.invoke(cli.app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[InMemoryJobRepository, InMemoryPublisher]:
    repo, publisher = InMemoryJobRepository(), InMemoryPublisher("/cairn/test")

    @asynccontextmanager
    async def open_repo(settings: Settings) -> AsyncIterator[JobRepository]:
        yield repo

    @asynccontextmanager
    async def open_publisher(settings: Settings, source: str) -> AsyncIterator[Publisher]:
        yield publisher

    monkeypatch.setattr(cli, "open_repo", open_repo)
    monkeypatch.setattr(cli, "open_publisher", open_publisher)
    return repo, publisher


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})


def test_start_publishes_a_tuning_request(runner: CliRunner, fakes: Any) -> None:
    _, publisher = fakes
    out = run(
        runner,
        "start",
        "--dataset",
        "support-qa",
        "--version",
        "3",
        "--rank",
        "16",
        "--lr",
        "1e-3",
        "--max-steps",
        "30",
        "--target-modules",
        "q_proj, k_proj,v_proj",
        "--seed",
        "7",
    )
    [event] = publisher.events()
    assert isinstance(event, TuningRequestedV1)
    assert event.job_id in out
    assert event.job_id.startswith("tune-")
    assert (event.dataset_id, event.dataset_version, event.base_model) == (
        "support-qa",
        3,
        "SmolLM2-135M-Instruct",
    )
    assert (event.config.rank, event.config.alpha, event.config.learning_rate, event.config.max_steps) == (
        16,
        16,
        1e-3,
        30,
    )
    assert (event.config.target_modules, event.config.seed) == (["q_proj", "k_proj", "v_proj"], 7)


def test_start_rejects_a_bad_request(runner: CliRunner, fakes: Any) -> None:
    out = run(runner, "start", "--dataset", "bad id!", "--version", "1", code=1)
    assert "invalid tuning request" in out
    assert "dataset_id" in out
    out = run(runner, "start", "--dataset", "d", "--version", "1", "--lr", "0", code=1)
    assert "learning_rate" in out
    assert fakes[1].messages == []


async def _queued(repo: InMemoryJobRepository) -> None:
    await repo.create(job("j1"))
    await repo.create(job("j2", requested_at=T0.replace(hour=10)))


def test_status_list_and_cancel(runner: CliRunner, fakes: Any) -> None:
    repo, _ = fakes
    asyncio.run(_queued(repo))
    assert "j1: queued step 0 attempt 0" in run(runner, "status", "j1")
    out = run(runner, "list")
    assert out.index("j2") < out.index("j1")
    assert "support-qa v1" in out
    assert "j1: cancel requested (queued)" in run(runner, "cancel", "j1")
    assert "j1: queued (cancel requested)" in run(runner, "status", "j1")
    assert "no job nope" in run(runner, "status", "nope", code=1)
    assert "no job nope" in run(runner, "cancel", "nope", code=1)


def test_status_follow_waits_for_the_end(runner: CliRunner, fakes: Any) -> None:
    repo, _ = fakes

    async def finished() -> None:
        await repo.create(job("j1"))
        await repo.claim_next(T0)
        await repo.heartbeat("j1", 1, T0, 4, 4, 0.5)
        await repo.finish("j1", 1, JobState.FAILED, T0, message="dataset missing")

    asyncio.run(finished())
    out = run(runner, "status", "j1", "--follow", "--interval", "0.01", code=1)
    assert "j1: failed step 4/4 loss 0.5000 attempt 1" in out
    assert "dataset missing" in out
    assert "cancel" not in out
    assert "already ended: failed" in run(runner, "cancel", "j1")


def test_register_base_once(runner: CliRunner, fakes: Any) -> None:
    _, publisher = fakes
    assert "registered cairn-qa:1: SmolLM2-135M-Instruct without adapter" in run(
        runner, "register-base", "cairn-qa"
    )
    assert "cairn-qa:1 is already the registration of SmolLM2-135M-Instruct; nothing done" in run(
        runner, "register-base", "cairn-qa", "--base-model", "SmolLM2-135M-Instruct"
    )
    [event] = publisher.events(ModelRegisteredV1.event_type)
    assert isinstance(event, ModelRegisteredV1)
    assert event.adapter_uri is None
    announced = publisher.events(AdminActionRecordedV1.event_type)
    assert [(e.action, e.target, e.details["access"]) for e in announced] == [  # type: ignore[attr-defined]
        ("tune.register_base", "model:cairn-qa", "direct-database")
    ] * 2
    assert event.version == 1
    assert "invalid model name" in run(runner, "register-base", "Bad:Name", code=1)


def test_register_base_quantized(runner: CliRunner, fakes: Any) -> None:
    _, publisher = fakes
    run(runner, "register-base", "cairn-qa")
    assert "registered cairn-qa:2: SmolLM2-135M-Instruct (int8) without adapter" in run(
        runner, "register-base", "cairn-qa", "--quantization", "int8"
    )
    assert "cairn-qa:2 is already the registration of SmolLM2-135M-Instruct (int8)" in run(
        runner, "register-base", "cairn-qa", "--quantization", "int8"
    )
    events = publisher.events(ModelRegisteredV1.event_type)
    assert [(e.version, e.quantization) for e in events] == [(1, None), (2, "int8")]  # type: ignore[attr-defined]
    assert "'int4'" in run(runner, "register-base", "cairn-qa", "--quantization", "int4", code=2)


@pytest.mark.integration
def test_cli_on_postgres(fresh_database: str) -> None:
    runner = CliRunner(env={"CAIRN_POSTGRES_DSN": fresh_database, "COLUMNS": "200"})
    assert "no job j1" in run(runner, "status", "j1", code=1)
    assert "job" in run(runner, "list")


@pytest.mark.integration
def test_errors_without_a_database_are_one_line() -> None:
    runner = CliRunner(env={"CAIRN_POSTGRES_DSN": "postgresql://cairn@127.0.0.1:1/none"})
    out = run(runner, "list", code=1)
    assert out.startswith("error:")


@pytest.mark.integration
async def test_start_and_register_base_reach_the_broker(
    local_stack: dict[str, str], fresh_database: str
) -> None:
    env = {**local_stack, "CAIRN_POSTGRES_DSN": fresh_database, "COLUMNS": "200"}
    runner = CliRunner(env=env)
    bootstrap = local_stack["CAIRN_KAFKA_BOOTSTRAP"]
    topics = load_topics()
    await ensure_topics(bootstrap, [topics["cairn.tuning"], topics["cairn.models"]])  # run alone too
    dataset = f"cli-{uuid.uuid4().hex[:8]}"

    def requested(meta: EventMeta, event: Event) -> bool:
        return isinstance(event, TuningRequestedV1) and event.dataset_id == dataset

    async with expect_events(bootstrap, "cairn.tuning", where=requested) as got:
        await asyncio.to_thread(run, runner, "start", "--dataset", dataset, "--version", "1")
    [(meta, _)] = [(m, e) for m, e in got.events if requested(m, e)]
    assert meta.source == "/cairn/cli"
    model = f"cairn-{dataset}"

    def registered(meta: EventMeta, event: Event) -> bool:
        return isinstance(event, ModelRegisteredV1) and event.model_name == model

    async with expect_events(bootstrap, "cairn.models", where=registered) as got:
        await asyncio.to_thread(run, runner, "register-base", model)
    [(meta, event)] = [(m, e) for m, e in got.events if registered(m, e)]
    assert meta.source == "/cairn/tuner"
    assert isinstance(event, ModelRegisteredV1)
    assert event.version == 1


def test_start_from_production_with_a_replay_fraction(runner: CliRunner, fakes: Any) -> None:
    _, publisher = fakes
    run(
        runner,
        "start",
        "--dataset",
        "support-qa",
        "--version",
        "4",
        "--from",
        "production",
        "--replay-fraction",
        "0.5",
    )
    run(runner, "start", "--dataset", "support-qa", "--version", "4")
    [continual, fresh] = publisher.events()
    assert isinstance(continual, TuningRequestedV1)
    assert isinstance(fresh, TuningRequestedV1)
    assert (continual.config.start_from, continual.config.replay_fraction) == ("production", 0.5)
    assert (fresh.config.start_from, fresh.config.replay_fraction) == ("base", None)
    out = run(runner, "start", "--dataset", "d", "--version", "1", "--from", "latest", code=1)
    assert "--from is `base` or `production`" in out
    out = run(runner, "start", "--dataset", "d", "--version", "1", "--replay-fraction", "2", code=1)
    assert "replay_fraction" in out
    assert len(publisher.events()) == 2
