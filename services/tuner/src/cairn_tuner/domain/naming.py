"""Names the tuner derives: job ids of policy requests, flattened configurations, adapter folders."""

from __future__ import annotations

import hashlib
import re

from cairn_events import JsonScalar, LoraConfig

POLICY_REQUESTER = "cairn-tuner-policy"
"""`requested_by` of the jobs the tuner requests itself when a dataset is published."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def policy_job_id(dataset_id: str, version: int) -> str:
    """The job id the dataset policy uses for a dataset version: the same version, the same job."""
    job_id = f"auto-{dataset_id}-v{version}"
    if len(job_id) <= 128 and not _UNSAFE.search(job_id):
        return job_id
    digest = hashlib.sha256(f"{dataset_id}\0{version}".encode()).hexdigest()[:16]
    return f"auto-{_UNSAFE.sub('-', dataset_id)[:80]}-v{version}-{digest}"


def flatten_config(config: LoraConfig, **extra: JsonScalar) -> dict[str, JsonScalar]:
    """The LoRA configuration as scalars (target modules comma separated, no unset limits), plus `extra`."""
    flat: dict[str, JsonScalar] = {
        "rank": config.rank,
        "alpha": config.alpha,
        "dropout": config.dropout,
        "target_modules": ",".join(config.target_modules),
        "learning_rate": config.learning_rate,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "seed": config.seed,
    }
    if config.max_steps is not None:
        flat["max_steps"] = config.max_steps
    flat.update(extra)
    return flat


def adapter_folder_uri(bucket: str, job_id: str) -> str:
    """`s3://<bucket>/adapters/<job_id>/`: where a job's adapter goes (trailing slash included)."""
    return f"s3://{bucket}/adapters/{job_id}/"


def dataset_folder_uri(bucket: str, dataset_id: str, version: int) -> str:
    """`s3://<bucket>/datasets/<dataset_id>/v<version>/`: where the feedback service put a dataset."""
    return f"s3://{bucket}/datasets/{dataset_id}/v{version}/"
