"""Events of the model lifecycle: dataset → tuning job → registered model → evaluation → promotion."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from cairn_events.base import INT64_MAX, Event, Identifier, Timestamp
from cairn_events.common import JsonScalar, LoraConfig, ModelStage, Quantization, SuiteScore

__all__ = [
    "DatasetPublishedV1",
    "EvaluationCompletedV1",
    "ModelPromotedV1",
    "ModelRegisteredV1",
    "TuningProgressedV1",
    "TuningRequestedV1",
]

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as 64 lower-case hex digits."""

_MODEL_NAME = "Name of the model in the registry."
_DATASET_ID = "Id of the curated dataset."
_JOB_ID = "Id of the tuning job."


class DatasetPublishedV1(Event):
    """The feedback service published a new immutable version of a curated training/evaluation dataset."""

    event_type: ClassVar[str] = "cairn.dataset.published.v1"
    topic: ClassVar[str] = "cairn.datasets"
    key_field: ClassVar[str] = "dataset_id"

    dataset_id: Identifier = Field(description=_DATASET_ID)
    version: int = Field(ge=1, le=INT64_MAX, description="Version of the dataset; each publication adds one.")
    uri: str = Field(description="Where the dataset files are, e.g. `s3://cairn/datasets/support-qa/v3/`.")
    manifest_uri: str = Field(description="Where the manifest (provenance of every row) is.")
    row_count: int = Field(ge=0, le=INT64_MAX, description="Rows in the dataset.")
    train_rows: int = Field(ge=0, le=INT64_MAX, description="Rows in the training split.")
    heldout_rows: int = Field(ge=0, le=INT64_MAX, description="Rows in the held-out evaluation split.")
    files_sha256: dict[str, Sha256Hex] = Field(
        description="SHA-256 (hex) of every dataset file, by file name relative to `uri`."
    )
    rules: list[str] = Field(description="The curation rules applied, e.g. `min_rating:4`, `dedupe:exact`.")
    source_request_count: int = Field(
        ge=0, le=INT64_MAX, description="Distinct requests the rows were drawn from."
    )
    published_at: Timestamp = Field(description="When the dataset version was published (RFC 3339).")


class TuningRequestedV1(Event):
    """Someone (or the closed loop) asked the tuner to train a LoRA adapter on a dataset version."""

    event_type: ClassVar[str] = "cairn.tuning.requested.v1"
    topic: ClassVar[str] = "cairn.tuning"
    key_field: ClassVar[str] = "job_id"

    job_id: Identifier = Field(description=_JOB_ID)
    base_model: str = Field(
        min_length=1, description="The base model to adapt, e.g. `HuggingFaceTB/SmolLM2-135M`."
    )
    dataset_id: Identifier = Field(description=_DATASET_ID)
    dataset_version: int = Field(ge=1, le=INT64_MAX, description="The dataset version to train on.")
    config: LoraConfig = Field(description="LoRA hyper-parameters.")
    requested_by: str = Field(
        min_length=1, description="Who asked: a user id or `cairn-feedback` for the loop."
    )
    requested_at: Timestamp = Field(description="When tuning was requested (RFC 3339).")


class TuningProgressedV1(Event):
    """A tuning job changed state or reported training progress."""

    event_type: ClassVar[str] = "cairn.tuning.progressed.v1"
    topic: ClassVar[str] = "cairn.tuning"
    key_field: ClassVar[str] = "job_id"

    job_id: Identifier = Field(description=_JOB_ID)
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"] = Field(
        description="The job's state."
    )
    step: int = Field(ge=0, le=INT64_MAX, description="Optimizer steps done so far.")
    total_steps: int | None = Field(
        None, ge=0, le=INT64_MAX, description="Steps the job will run, when known."
    )
    loss: float | None = Field(None, description="Latest training loss, when known.")
    message: str | None = Field(None, description="Human-readable detail, e.g. the error of a failed job.")
    progressed_at: Timestamp = Field(description="When this progress was observed (RFC 3339).")


class ModelRegisteredV1(Event):
    """A new model version (base model plus optional adapter) entered the registry at stage `dev`."""

    event_type: ClassVar[str] = "cairn.model.registered.v1"
    topic: ClassVar[str] = "cairn.models"
    key_field: ClassVar[str] = "model_name"

    model_name: Identifier = Field(description=_MODEL_NAME)
    version: int = Field(ge=1, le=INT64_MAX, description="The new version number of the model.")
    base_model: str = Field(min_length=1, description="The base model the version builds on.")
    adapter_uri: str | None = Field(
        None, description="Where the LoRA adapter is; none for a plain base model."
    )
    dataset_id: Identifier | None = Field(None, description="The dataset it was trained on, if tuned.")
    dataset_version: int | None = Field(
        None, ge=1, le=INT64_MAX, description="The dataset version it was trained on."
    )
    job_id: Identifier | None = Field(None, description="The tuning job that produced it, if tuned.")
    config: dict[str, JsonScalar] = Field(description="Training configuration, flattened to scalars.")
    metrics: dict[str, float] = Field(description="Training metrics, e.g. `train_loss`.")
    code_version: str = Field(min_length=1, description="Version (e.g. git commit) of the training code.")
    registered_at: Timestamp = Field(description="When the version was registered (RFC 3339).")
    quantization: Quantization | None = Field(
        None,
        description="How inference serves the version's weights, e.g. `int8`; none: the backend's full "
        "precision (float32 on CPU).",
    )


class ModelPromotedV1(Event):
    """A model version moved between registry stages (e.g. staging → production)."""

    event_type: ClassVar[str] = "cairn.model.promoted.v1"
    topic: ClassVar[str] = "cairn.models"
    key_field: ClassVar[str] = "model_name"

    model_name: Identifier = Field(description=_MODEL_NAME)
    version: int = Field(ge=1, le=INT64_MAX, description="The model version that moved.")
    from_stage: ModelStage | None = Field(None, description="The stage it left; none if it had none.")
    to_stage: ModelStage = Field(description="The stage it entered.")
    adapter_uri: str | None = Field(None, description="Where its LoRA adapter is, so inference can load it.")
    promoted_by: str = Field(min_length=1, description="Who promoted: a user id or `cairn-evaluator`.")
    reason: str = Field(description="Why, in words.")
    evidence_run_id: Identifier | None = Field(
        None, description="The evaluation run that justified the promotion, if any."
    )
    promoted_at: Timestamp = Field(description="When the promotion took effect (RFC 3339).")


class EvaluationCompletedV1(Event):
    """The evaluator scored a candidate model version against a baseline on its suites."""

    event_type: ClassVar[str] = "cairn.evaluation.completed.v1"
    topic: ClassVar[str] = "cairn.evaluations"
    key_field: ClassVar[str] = "model_name"

    run_id: Identifier = Field(description="Id of the evaluation run.")
    model_name: Identifier = Field(description=_MODEL_NAME)
    candidate_version: int = Field(ge=1, le=INT64_MAX, description="The version under evaluation.")
    baseline_version: int | None = Field(
        None, ge=1, le=INT64_MAX, description="The version compared against, if any."
    )
    suites: list[SuiteScore] = Field(description="Scores per suite and metric.")
    passed: bool = Field(description="Whether the candidate passed every gate.")
    report_uri: str | None = Field(None, description="Where the full report is, if stored.")
    completed_at: Timestamp = Field(description="When the run finished (RFC 3339).")
