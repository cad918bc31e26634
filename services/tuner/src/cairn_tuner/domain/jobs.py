"""Tuning jobs: what was asked, where the job stands, what training produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cairn_events import JsonScalar, LoraConfig, TuningRequestedV1


class JobState(StrEnum):
    """Where a job stands; `succeeded`, `failed` and `cancelled` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the job will never change again."""
        return self in {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


@dataclass(frozen=True)
class Job:
    """One tuning job as the tuner records it."""

    job_id: str
    base_model: str
    dataset_id: str
    dataset_version: int
    config: LoraConfig
    requested_by: str
    requested_at: datetime
    state: JobState = JobState.QUEUED
    attempt: int = 0
    """Runs started so far (a claim adds one)."""
    step: int = 0
    total_steps: int | None = None
    loss: float | None = None
    message: str | None = None
    cancel_requested: bool = False
    heartbeat_at: datetime | None = None
    updated_at: datetime | None = None
    adapter_uri: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_request(cls, event: TuningRequestedV1) -> Job:
        """A new queued job for a tuning request."""
        return cls(
            job_id=event.job_id,
            base_model=event.base_model,
            dataset_id=event.dataset_id,
            dataset_version=event.dataset_version,
            config=event.config,
            requested_by=event.requested_by,
            requested_at=event.requested_at,
        )


@dataclass(frozen=True)
class StepReport:
    """Training progress after one optimizer step."""

    step: int
    total_steps: int
    loss: float


@dataclass(frozen=True)
class TrainedAdapter:
    """What a finished training run left in the object store."""

    adapter_uri: str
    """The adapter folder, with a trailing slash."""
    config: dict[str, JsonScalar]
    metrics: dict[str, float]
    files: dict[str, str]
    """File name → hex SHA-256, as in the adapter manifest."""
    code_version: str


@dataclass(frozen=True)
class Registration:
    """A model version number handed out by the tuner."""

    model_name: str
    version: int
    base_model: str
    job_id: str | None
    adapter_uri: str | None
    registered_at: datetime
    published: bool = False
    """Whether its `model.registered` event went out."""
    quantization: str | None = None
    """How inference serves a plain base model's version (`int8`); None: full precision."""


LEASE_LOST_CANCELLED = "cancelled: its worker stopped after the cancel was asked for"
"""Why a job whose cancel was asked for and whose worker died ends `cancelled`."""


def lease_lost_message(attempts: int) -> str:
    """Why a job failed when its worker was lost on its last attempt."""
    return f"worker lost heartbeat after {attempts} attempts"


class TrainingError(Exception):
    """Training cannot succeed as asked (missing base model or dataset, bad configuration); the message
    says why in words a user can act on."""


class TrainingInterrupted(Exception):  # noqa: N818 - not an error: the runner asked training to stop
    """Training stopped between two steps because the runner asked it to."""
