"""What the feedback service stores: the events of each request as seen on the bus, and dataset versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cairn_events import FeedbackSubmittedV1, InputScreenedV1, RequestSubmittedV1, ResponseCompletedV1
from cairn_events.artifacts import DatasetManifest

EVALUATOR_USER = "cairn-evaluator"
"""The `user_id` of the evaluator's requests: evaluation traffic, stored but never curated."""


@dataclass(frozen=True)
class RequestTrail:
    """Everything stored about one request id: each part may still be missing (order of arrival)."""

    request_id: str
    request: RequestSubmittedV1 | None = None
    screening: InputScreenedV1 | None = None
    response: ResponseCompletedV1 | None = None
    """The live answer, the one upstream got (from `cairn.responses`)."""
    feedback: tuple[FeedbackSubmittedV1, ...] = ()
    """Every feedback on the request, oldest first (by `submitted_at`, then `feedback_id`)."""
    shadow_response: ResponseCompletedV1 | None = None
    """The answer of a replay of the request (from `cairn.responses.shadow`): only the `teacher:` rule
    reads it; it never counts as the answer upstream got."""

    @property
    def is_evaluation(self) -> bool:
        """Whether the request was the evaluator's (never curated)."""
        return self.request is not None and self.request.user_id == EVALUATOR_USER

    def latest_feedback(self) -> FeedbackSubmittedV1 | None:
        """The feedback that counts: the latest one given."""
        return self.feedback[-1] if self.feedback else None


def answered_by(response: ResponseCompletedV1 | None) -> str | None:
    """The model reference that answered, as a request would name it: the adapter (`cairn-qa:3`), else
    the registry name and version (`cairn-qa:1`, the base version without adapter), else the model
    (a base model that answered outside the registry); None without a model."""
    if response is None:
        return None
    if response.adapter:
        return response.adapter
    if response.model and response.model_version:
        return f"{response.model}:{response.model_version}"
    return response.model


def feedback_order(feedback: FeedbackSubmittedV1) -> tuple[datetime, str]:
    """The order in which feedback on one request was given; the last one wins."""
    return (feedback.submitted_at, feedback.feedback_id)


@dataclass(frozen=True)
class RowProvenance:
    """Where one row of a dataset version came from."""

    row_id: str
    request_id: str
    feedback_id: str | None
    """None for a `teacher` row: no feedback selected it."""
    prompt_name: str
    prompt_version: int
    source: Literal["corrected", "rated", "teacher"]
    split: Literal["train", "heldout"]


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable, published version of a dataset."""

    dataset_id: str
    version: int
    uri: str
    manifest_uri: str
    manifest: DatasetManifest
    rows: tuple[RowProvenance, ...] = field(default=())


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset and its latest version."""

    dataset_id: str
    versions: int
    latest_version: int
    latest_rows: int
    latest_created_at: str


def check_made(dataset_id: str, version: int, made: DatasetVersion) -> DatasetVersion:
    """`made`, when it is the version asked for; a repository records nothing else."""
    if (made.dataset_id, made.version, made.manifest.version) != (dataset_id, version, version):
        raise ValueError(f"expected {dataset_id} v{version}, got {made.dataset_id} v{made.version}")
    return made
