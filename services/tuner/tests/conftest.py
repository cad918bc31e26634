"""Shared helpers of the tuner's tests: dataset rows in a store, requests, a fake trainer, deps, the tiny model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import InMemoryPublisher, RawRecord
from cairn_bus.objects import ObjectStore
from cairn_bus.publisher import OutgoingMessage
from cairn_events import LoraConfig, TuningProgressedV1, TuningRequestedV1
from cairn_events.artifacts import HELDOUT_FILE, TRAIN_FILE, DatasetRow, SourceRequest
from cairn_tuner.adapters.memory import InMemoryJobRepository
from cairn_tuner.app import router
from cairn_tuner.deps import Deps
from cairn_tuner.domain.continual import StartPlan
from cairn_tuner.domain.jobs import Job, StepReport, TrainedAdapter, TrainingInterrupted
from cairn_tuner.ports import JobRepository, StepCallback, StopCheck, Trainer
from cairn_tuner.settings import Settings

T0 = datetime(2025, 3, 4, 9, 15, 22, tzinfo=UTC)
TINY = "cairn-tiny-chat"
QUESTIONS = [
    ("What is the capital of France?", "Paris."),
    ("What is the capital of Japan?", "Tokyo."),
    ("What does yield do in Python?", "It makes a generator."),
    ("Say hello.", "Hello, how can I help you today?"),
    ("What carries events between services?", "Kafka topics."),
    ("Be brief: what is two plus two?", "4"),
]


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def row(question: str, answer: str, n: int = 0) -> DatasetRow:
    """A dataset row: a system prompt and a question, the answer as target."""
    return DatasetRow(
        row_id=f"{n:016x}",
        request_id=f"req-{n}",
        feedback_id=f"fb-{n}",
        tenant="default",
        prompt_name="qa",
        prompt_version=1,
        request=SourceRequest(prompt="qa"),
        messages=[
            {"role": "system", "content": "Answer the question. Be brief."},  # type: ignore[list-item]
            {"role": "user", "content": question},  # type: ignore[list-item]
        ],
        completion=answer,
        source="corrected",
    )


def rows(count: int = 6, start: int = 0) -> list[DatasetRow]:
    return [row(*QUESTIONS[(start + i) % len(QUESTIONS)], n=start + i) for i in range(count)]


def put_dataset(
    store: ObjectStore,
    dataset_id: str = "support-qa",
    version: int = 1,
    train: list[DatasetRow] | None = None,
    heldout: list[DatasetRow] | None = None,
    bucket: str = "cairn",
) -> None:
    """Write a dataset version's two splits where the feedback service would."""
    folder = f"s3://{bucket}/datasets/{dataset_id}/v{version}/"
    for name, split in (
        (TRAIN_FILE, rows(6) if train is None else train),
        (HELDOUT_FILE, heldout or rows(2, 6)),
    ):
        store.put(folder + name, "".join(r.model_dump_json() + "\n" for r in split).encode())


def lora(**fields: Any) -> LoraConfig:
    data: dict[str, Any] = {
        "rank": 4,
        "alpha": 8,
        "dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "learning_rate": 1e-2,
        "epochs": 1,
        "batch_size": 2,
        "max_steps": 4,
        "seed": 0,
    }
    data.update(fields)
    return LoraConfig.model_validate(data)


def request(job_id: str = "job-1", base_model: str = TINY, **fields: Any) -> TuningRequestedV1:
    data: dict[str, Any] = {
        "job_id": job_id,
        "base_model": base_model,
        "dataset_id": "support-qa",
        "dataset_version": 1,
        "config": lora(),
        "requested_by": "ana",
        "requested_at": T0,
    }
    data.update(fields)
    return TuningRequestedV1.model_validate(data)


def job(job_id: str = "job-1", **fields: Any) -> Job:
    return Job.from_request(request(job_id, **fields))


@dataclass
class FakeTrainer:
    """Reports `steps` steps (optionally `on_step_hook(step)` first and `delay_s` each), then an adapter;
    or raises `error`."""

    steps: int = 3
    delay_s: float = 0.0
    error: Exception | None = None
    on_step_hook: Callable[[Job, int], None] | None = None
    calls: list[str] = field(default_factory=list)

    starts: list[StartPlan | None] = field(default_factory=list)

    def train(
        self, job: Job, on_step: StepCallback, should_stop: StopCheck, start: StartPlan | None = None
    ) -> TrainedAdapter:
        self.calls.append(job.job_id)
        self.starts.append(start)
        for step in range(1, self.steps + 1):
            if should_stop():
                raise TrainingInterrupted(f"before step {step}")
            if self.on_step_hook is not None:
                self.on_step_hook(job, step)
            if self.error is not None and step == 2:
                raise self.error
            time.sleep(self.delay_s)
            on_step(StepReport(step, self.steps, 2.0 / step))
        return TrainedAdapter(
            adapter_uri=f"s3://cairn/adapters/{job.job_id}/",
            config={"rank": job.config.rank},
            metrics={"train_loss": 1.0, "final_loss": 2.0 / self.steps, "steps": float(self.steps)},
            files={"adapter_model.safetensors": "0" * 64},
            code_version="test",
        )


def settings(**fields: Any) -> Settings:
    base: dict[str, Any] = {"progress_interval_s": 0.0, "heartbeat_s": 0.05, "poll_interval_s": 0.05}
    base.update(fields)
    return Settings(**base)


def make_deps(
    repo: JobRepository | None = None,
    trainer: Trainer | None = None,
    clock: Callable[[], datetime] | None = None,
    **setting_fields: Any,
) -> Deps:
    """Deps on in-memory parts, publishing what the tuner declares."""
    return Deps(
        settings=settings(**setting_fields),
        repo=repo or InMemoryJobRepository(),
        publisher=InMemoryPublisher("/cairn/tuner", allowed_types=router.published_types),
        trainer=trainer or FakeTrainer(),
        code_version="test",
        clock=clock or Clock(),
    )


def published(deps: Deps) -> InMemoryPublisher:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return deps.publisher


def progress(deps: Deps) -> list[TuningProgressedV1]:
    """The tuning.progressed events published so far."""
    return [
        e for e in published(deps).events(TuningProgressedV1.event_type) if isinstance(e, TuningProgressedV1)
    ]


def as_record(message: OutgoingMessage, offset: int = 0) -> RawRecord:
    """What a consumer would read after `message` was produced."""
    return RawRecord(
        message.topic, 0, offset, message.value, message.key, list(message.headers), 1_741_079_722_000
    )


def cancel_in_memory(repo: InMemoryJobRepository, at_step: int) -> Callable[[Job, int], None]:
    """A step hook that asks for the job's cancellation (as `cairn tune cancel` would) at a step."""

    def hook(job: Job, step: int) -> None:
        if step == at_step:
            repo.jobs[job.job_id] = replace(repo.jobs[job.job_id], cancel_requested=True)

    return hook


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny chat model as `cairn-tiny-chat`."""
    from cairn_testing.tiny import build_tiny_model

    folder = tmp_path_factory.mktemp("models")
    build_tiny_model(folder / TINY)
    return folder
