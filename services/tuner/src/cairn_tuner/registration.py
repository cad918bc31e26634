"""Model version numbers: allocated once per tuned adapter (or base model), announced as `model.registered`."""

from __future__ import annotations

from datetime import datetime

from cairn_bus import Publisher, derive_event_id
from cairn_events import ModelRegisteredV1, Quantization
from cairn_tuner.domain.jobs import Job, Registration, TrainedAdapter
from cairn_tuner.ports import JobRepository


def registered_event_id(registration: Registration) -> str:
    """The event id of a version's `model.registered`: the same however often it is sent."""
    key = f"{registration.model_name}:{registration.version}"
    return derive_event_id(key, ModelRegisteredV1.event_type)


def registered_event(
    registration: Registration,
    code_version: str,
    job: Job | None = None,
    adapter: TrainedAdapter | None = None,
) -> ModelRegisteredV1:
    """The `model.registered` of a version: a tuned adapter (job and adapter given) or a plain base model."""
    return ModelRegisteredV1(
        model_name=registration.model_name,
        version=registration.version,
        base_model=registration.base_model,
        adapter_uri=adapter.adapter_uri if adapter else None,
        dataset_id=job.dataset_id if job else None,
        dataset_version=job.dataset_version if job else None,
        job_id=job.job_id if job else None,
        config=dict(adapter.config) if adapter else {},
        metrics=dict(adapter.metrics) if adapter else {},
        code_version=adapter.code_version if adapter else code_version,
        registered_at=registration.registered_at,
        quantization=Quantization(registration.quantization) if registration.quantization else None,
    )


async def announce(
    repo: JobRepository, publisher: Publisher, registration: Registration, event: ModelRegisteredV1
) -> None:
    """Publish a version's `model.registered` (a fixed event id) and record that it went out."""
    await publisher.publish(event, event_id=registered_event_id(registration))
    await repo.mark_published(registration.model_name, registration.version)


async def register_adapter(
    repo: JobRepository,
    publisher: Publisher,
    model_name: str,
    job: Job,
    adapter: TrainedAdapter,
    now: datetime,
) -> Registration:
    """Allocate the job's version of `model_name` (the same one if the job registers again) and announce it."""
    registration, _ = await repo.allocate_version(
        model_name, job.base_model, now, job_id=job.job_id, adapter_uri=adapter.adapter_uri
    )
    await announce(
        repo, publisher, registration, registered_event(registration, adapter.code_version, job, adapter)
    )
    return registration


async def register_base(
    repo: JobRepository,
    publisher: Publisher,
    model_name: str,
    base_model: str,
    code_version: str,
    now: datetime,
    quantization: str | None = None,
) -> tuple[Registration, bool]:
    """Register `base_model` without adapter, served at `quantization` (None: full precision), as a version
    of `model_name`; the registration and whether it was announced now (False: it was registered and
    announced before, nothing was done)."""
    registration, _ = await repo.allocate_version(model_name, base_model, now, quantization=quantization)
    if registration.published:
        return registration, False
    await announce(repo, publisher, registration, registered_event(registration, code_version))
    return registration, True
