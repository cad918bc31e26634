"""The tuner's event handlers: record requested jobs, request jobs for large enough datasets, follow the
registry's stages (a job may start from the production adapter).

Handlers never train: the runner (`runner.py`) claims queued jobs in the background.
"""

from __future__ import annotations

from cairn_bus import EventMeta
from cairn_events import DatasetPublishedV1, ModelPromotedV1, TuningProgressedV1, TuningRequestedV1
from cairn_observability import get_logger
from cairn_tuner.deps import Deps
from cairn_tuner.domain.jobs import Job, JobState
from cairn_tuner.domain.naming import POLICY_REQUESTER, policy_job_id

log = get_logger("cairn.tuner")


async def on_tuning_requested(event: TuningRequestedV1, meta: EventMeta, deps: Deps) -> None:
    """Record the job as queued (once per `job_id`) and announce it; a repeated request changes nothing."""
    job, created = await deps.repo.create(Job.from_request(event))
    if not created:
        log.info("tuning request for a known job ignored", job_id=job.job_id, state=job.state.value)
        if job.state is not JobState.QUEUED:
            return
    progress = TuningProgressedV1(job_id=job.job_id, state="queued", step=0, progressed_at=deps.clock())
    await deps.publisher.publish(progress, cause=meta)
    deps.wakeup.set()


async def on_dataset_published(event: DatasetPublishedV1, meta: EventMeta, deps: Deps) -> None:
    """Request a job for a dataset version the policies say to tune: the dataset's own policy file
    (`tune_policies`: its `min_rows`, base model and configuration), else the global one (`tune_min_rows`
    > 0, the settings' defaults). The job id is fixed by the dataset version, so it is requested once."""
    settings = deps.settings
    policy = deps.tune_policies.load(event.dataset_id) if deps.tune_policies is not None else None
    min_rows = policy.min_rows if policy is not None else settings.tune_min_rows
    if min_rows <= 0 or event.train_rows < min_rows:
        if min_rows > 0:
            log.info(
                "dataset version below the tuning policy",
                dataset=event.dataset_id,
                version=event.version,
                train_rows=event.train_rows,
                min_rows=min_rows,
            )
        return
    request = TuningRequestedV1(
        job_id=policy_job_id(event.dataset_id, event.version),
        base_model=(policy.base_model if policy else None) or settings.base_model,
        dataset_id=event.dataset_id,
        dataset_version=event.version,
        config=policy.lora_config(settings.default_lora_config())
        if policy
        else settings.default_lora_config(),
        requested_by=POLICY_REQUESTER,
        requested_at=deps.clock(),
    )
    await deps.publisher.publish(request, cause=meta)


async def on_model_promoted(event: ModelPromotedV1, meta: EventMeta, deps: Deps) -> None:
    """Record the version's new stage: the production version is where a `start_from: production` job starts."""
    await deps.repo.record_promotion(
        event.model_name, event.version, event.to_stage.value, event.adapter_uri, event.promoted_at
    )
