"""Jobs and version numbers in dicts: the JobRepository of unit tests."""

from __future__ import annotations

import builtins
from dataclasses import replace
from datetime import datetime, timedelta

from cairn_tuner.domain.continual import ProductionVersion
from cairn_tuner.domain.jobs import (
    LEASE_LOST_CANCELLED,
    Job,
    JobState,
    Registration,
    TrainedAdapter,
    lease_lost_message,
)


class InMemoryJobRepository:
    """JobRepository in memory (one event loop, so each call is atomic)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.versions: dict[str, list[Registration]] = {}
        self.stages: dict[tuple[str, int], tuple[str, str | None, datetime]] = {}
        """(model, version) → (stage, adapter URI, promoted at)."""

    async def create(self, job: Job) -> tuple[Job, bool]:
        found = self.jobs.get(job.job_id)
        if found is not None:
            return found, False
        self.jobs[job.job_id] = job
        return job, True

    async def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def list(self, limit: int = 50) -> builtins.list[Job]:
        jobs = sorted(self.jobs.values(), key=lambda j: (j.requested_at, j.job_id), reverse=True)
        return jobs[:limit]

    async def claim_next(self, now: datetime) -> Job | None:
        queued = [j for j in self.jobs.values() if j.state is JobState.QUEUED]
        if not queued:
            return None
        job = min(queued, key=lambda j: (j.requested_at, j.job_id))
        return self._put(
            replace(job, state=JobState.RUNNING, attempt=job.attempt + 1, heartbeat_at=now, updated_at=now)
        )

    def _put(self, job: Job) -> Job:
        self.jobs[job.job_id] = job
        return job

    def _held(self, job_id: str, attempt: int) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.state is not JobState.RUNNING or job.attempt != attempt:
            return None
        return job

    async def heartbeat(
        self, job_id: str, attempt: int, now: datetime, step: int, total_steps: int | None, loss: float | None
    ) -> Job | None:
        job = self._held(job_id, attempt)
        if job is None:
            return None
        return self._put(
            replace(job, heartbeat_at=now, updated_at=now, step=step, total_steps=total_steps, loss=loss)
        )

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
        job = self._held(job_id, attempt)
        if job is None:
            return None
        job = replace(job, state=state, message=message, updated_at=now)
        if adapter is not None:
            job = replace(job, adapter_uri=adapter.adapter_uri, metrics=dict(adapter.metrics))
        if registration is not None:
            job = replace(job, model_name=registration.model_name, model_version=registration.version)
        return self._put(job)

    async def release(self, job_id: str, attempt: int, now: datetime) -> Job | None:
        job = self._held(job_id, attempt)
        if job is None:
            return None
        return self._put(replace(job, state=JobState.QUEUED, attempt=job.attempt - 1, updated_at=now))

    async def request_cancel(self, job_id: str, now: datetime) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.state.terminal:
            return job
        return self._put(replace(job, cancel_requested=True, updated_at=now))

    async def expire_leases(self, now: datetime, lease_s: float, max_attempts: int) -> builtins.list[Job]:
        changed = []
        for job in list(self.jobs.values()):
            stale = job.heartbeat_at is None or job.heartbeat_at < now - timedelta(seconds=lease_s)
            if job.state is not JobState.RUNNING or not stale:
                continue
            if job.cancel_requested:
                job = replace(job, state=JobState.CANCELLED, message=LEASE_LOST_CANCELLED, updated_at=now)
            elif job.attempt < max_attempts:
                job = replace(job, state=JobState.QUEUED, updated_at=now)
            else:
                job = replace(
                    job, state=JobState.FAILED, message=lease_lost_message(job.attempt), updated_at=now
                )
            changed.append(self._put(job))
        return changed

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
        versions = self.versions.setdefault(model_name, [])
        for reg in versions:
            if (job_id is not None and reg.job_id == job_id) or (
                job_id is None
                and reg.job_id is None
                and reg.base_model == base_model
                and reg.quantization == quantization
            ):
                return reg, False
        reg = Registration(
            model_name, len(versions) + 1, base_model, job_id, adapter_uri, now, quantization=quantization
        )
        versions.append(reg)
        return reg, True

    async def mark_published(self, model_name: str, version: int) -> None:
        versions = self.versions.get(model_name, [])
        for i, reg in enumerate(versions):
            if reg.version == version:
                versions[i] = replace(reg, published=True)

    async def record_promotion(
        self, model_name: str, version: int, stage: str, adapter_uri: str | None, promoted_at: datetime
    ) -> None:
        found = self.stages.get((model_name, version))
        if found is not None and found[2] > promoted_at:
            return
        self.stages[(model_name, version)] = (stage, adapter_uri, promoted_at)

    async def production(self, model_name: str) -> ProductionVersion | None:
        held = [
            (at, version, uri)
            for (name, version), (stage, uri, at) in self.stages.items()
            if name == model_name and stage == "production"
        ]
        if not held:
            return None
        _, version, uri = max(held)
        if uri is None:
            registered = [r for r in self.versions.get(model_name, []) if r.version == version]
            uri = registered[0].adapter_uri if registered else None
        return ProductionVersion(model_name, version, uri)
