"""The tuner's ports: where jobs and version numbers are kept, and what trains an adapter."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cairn_tuner.domain.continual import ProductionVersion, StartPlan
from cairn_tuner.domain.jobs import Job, JobState, Registration, StepReport, TrainedAdapter


class JobRepository(Protocol):
    """Tuning jobs and model version numbers.

    A job moves queued → running → succeeded | failed | cancelled, and back to queued when its
    worker is lost (lease expired) or lets it go (shutdown). Only the holder of a running job's
    current attempt may change it. Storage failures that may pass raise `cairn_bus.TransientError`
    or `OSError`.
    """

    async def create(self, job: Job) -> tuple[Job, bool]:
        """Record a new queued job; when `job.job_id` exists, that job unchanged and False."""
        ...

    async def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        ...

    async def list(self, limit: int = 50) -> list[Job]:
        """The most recently requested jobs, newest first."""
        ...

    async def claim_next(self, now: datetime) -> Job | None:
        """Take the oldest queued job (skipping jobs other workers are claiming): it becomes running,
        its attempt grows by one and its heartbeat is `now`. None when nothing is queued."""
        ...

    async def heartbeat(
        self, job_id: str, attempt: int, now: datetime, step: int, total_steps: int | None, loss: float | None
    ) -> Job | None:
        """Renew the lease of a running attempt and record its progress; the job (its
        `cancel_requested` included), or None when the attempt no longer holds the job."""
        ...

    async def finish(
        self,
        job_id: str,
        attempt: int,
        state: JobState,
        now: datetime,
        *,
        message: str | None = None,
        adapter: TrainedAdapter | None = None,
        registration: Registration | None = None,
    ) -> Job | None:
        """Move a running attempt to a final state; the job, or None when the attempt no longer holds it."""
        ...

    async def release(self, job_id: str, attempt: int, now: datetime) -> Job | None:
        """Put a running attempt back in the queue without counting it (the worker is shutting down)."""
        ...

    async def request_cancel(self, job_id: str, now: datetime) -> Job | None:
        """Ask an unfinished job to stop (the runner cancels it); the job as it is now, or None if unknown."""
        ...

    async def expire_leases(self, now: datetime, lease_s: float, max_attempts: int) -> builtins.list[Job]:
        """Running jobs whose heartbeat is older than `lease_s`: re-queued while `attempt < max_attempts`,
        else failed with the reason. Returns the jobs changed, as they are now."""
        ...

    async def allocate_version(
        self,
        model_name: str,
        base_model: str,
        now: datetime,
        *,
        job_id: str | None = None,
        adapter_uri: str | None = None,
        quantization: str | None = None,
    ) -> tuple[Registration, bool]:
        """The next version of `model_name` for a job's adapter (`job_id` given), or for the plain base
        model (no job, no adapter) served at `quantization` (None: full precision). Idempotent: one
        version per job, one per base model and quantization of a model name; a second call returns it
        with False."""
        ...

    async def mark_published(self, model_name: str, version: int) -> None:
        """Record that the version's `model.registered` event went out."""
        ...

    async def record_promotion(
        self, model_name: str, version: int, stage: str, adapter_uri: str | None, promoted_at: datetime
    ) -> None:
        """Record that a version entered `stage` (from `model.promoted`); a promotion older than the one
        recorded for that version changes nothing, so replays and repeats are harmless."""
        ...

    async def production(self, model_name: str) -> ProductionVersion | None:
        """The version of `model_name` promoted to production last and still there (its adapter from the
        promotion, else from the tuner's own registration); None when none is."""
        ...


StepCallback = Callable[[StepReport], None]
StopCheck = Callable[[], bool]


class Trainer(Protocol):
    """Trains a LoRA adapter for a job and stores it with its manifest."""

    def train(
        self, job: Job, on_step: StepCallback, should_stop: StopCheck, start: StartPlan | None = None
    ) -> TrainedAdapter:
        """Train (blocking: call it in a worker thread), calling `on_step` after every optimizer step and
        `should_stop` between steps, then upload the adapter. `start`: continue its parent's adapter and
        replay part of the parent's training rows (None: a fresh adapter on the base model). Raises `TrainingError` when the job cannot
        succeed (the message says why), `TrainingInterrupted` once `should_stop` returns True."""
        ...
