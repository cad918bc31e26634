"""Contracts of the files the closed loop keeps in S3: dataset rows and manifests, adapter manifests.

Events point at these files (`DatasetPublishedV1.uri`/`manifest_uri`, `ModelRegisteredV1.adapter_uri`);
the feedback service writes datasets, the tuner reads them and writes adapters, the evaluator reads the
held-out split and inference reads adapters. Layout:

    s3://<bucket>/datasets/<dataset_id>/v<version>/train.jsonl      one `DatasetRow` per line
    s3://<bucket>/datasets/<dataset_id>/v<version>/heldout.jsonl
    s3://<bucket>/datasets/<dataset_id>/v<version>/manifest.json    a `DatasetManifest`
    s3://<bucket>/adapters/<job_id>/                                PEFT files (`adapter_config.json`,
                                                                    `adapter_model.safetensors`) and
                                                                    `cairn-adapter.json` (an `AdapterManifest`)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cairn_events.common import ChatMessage, JsonScalar

__all__ = [
    "ADAPTER_MANIFEST",
    "DATASET_MANIFEST",
    "HELDOUT_FILE",
    "TRAIN_FILE",
    "AdapterManifest",
    "DatasetFile",
    "DatasetManifest",
    "DatasetRow",
    "SourceRequest",
]

TRAIN_FILE = "train.jsonl"
HELDOUT_FILE = "heldout.jsonl"
DATASET_MANIFEST = "manifest.json"
ADAPTER_MANIFEST = "cairn-adapter.json"


class SourceRequest(BaseModel):
    """What the upstream asked, as submitted: enough to send the same request again (evaluation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(description="The prompt reference the request named, e.g. `qa` or `qa:3`.")
    variables: dict[str, JsonScalar] = Field({}, description="The request's template variables.")
    messages: list[ChatMessage] = Field([], description="The request's own chat turns, if any.")
    retrieval: dict[str, Any] | None = Field(
        None, description="The request's retrieval options (`RetrievalOptions` as JSON), if any."
    )


class DatasetRow(BaseModel):
    """One training/evaluation example: the exact model input of a past request and the answer to learn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row_id: str = Field(
        description="Stable id of the row: the sha256 of its input and target, 16 hex digits."
    )
    request_id: str = Field(description="The production request the row came from.")
    feedback_id: str | None = Field(
        description="The feedback that selected it; none for a `teacher` row (no feedback selected it)."
    )
    tenant: str = Field(description="The request's tenant.")
    prompt_name: str = Field(description="Name of the prompt the request used.")
    prompt_version: int = Field(description="Version of the prompt the request used.")
    model: str | None = Field(
        None,
        description="The model (and version) that answered in production; for a `teacher` row, the teacher.",
    )
    request: SourceRequest = Field(description="The request as submitted (for re-asking it).")
    messages: list[ChatMessage] = Field(
        description="The model input as screened (system prompt, retrieved context, user turn), PII scrubbed."
    )
    completion: str = Field(
        description="The target answer: the corrected answer, the liked original, or the teacher's answer."
    )
    source: Literal["corrected", "rated", "teacher"] = Field(
        description="Why the target is trusted: a correction, a good rating, or the designated teacher model answered."
    )
    rating: int | None = Field(None, description="The feedback's rating, if any.")


class DatasetFile(BaseModel):
    """One file of a dataset version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="File name within the version folder, e.g. `train.jsonl`.")
    rows: int = Field(ge=0, description="Rows in the file.")
    sha256: str = Field(description="Hex SHA-256 of the file's bytes.")
    bytes: int = Field(ge=0, description="Size of the file.")


class DatasetManifest(BaseModel):
    """The provenance of a dataset version: its files, rules, and the requests every row came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset_id: str = Field(description="Id of the dataset.")
    version: int = Field(ge=1, description="The version; versions are immutable once published.")
    created_at: str = Field(description="When the version was built (RFC 3339).")
    rules: list[str] = Field(description="The curation rules applied, e.g. `corrected`, `min_rating:4`.")
    files: list[DatasetFile] = Field(description="Every file of the version with its hash.")
    row_count: int = Field(ge=0, description="Rows in all splits.")
    train_rows: int = Field(ge=0, description="Rows in the training split.")
    heldout_rows: int = Field(ge=0, description="Rows in the held-out split.")
    request_ids: list[str] = Field(description="Every production request a row came from, sorted.")
    feedback_ids: list[str] = Field(
        description="Every feedback that selected a row, sorted (teacher rows have none)."
    )
    dropped: dict[str, int] = Field({}, description="Rows left out, by reason (e.g. `duplicate`, `empty`).")
    code_version: str = Field(description="Version of the curation code (git commit or package version).")


class AdapterManifest(BaseModel):
    """What the tuner records next to an adapter's PEFT files: its lineage and training figures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str = Field(description="The tuning job that produced the adapter.")
    base_model: str = Field(description="The base model the adapter applies to.")
    dataset_id: str = Field(description="The dataset trained on.")
    dataset_version: int = Field(description="The dataset version trained on.")
    config: dict[str, JsonScalar] = Field(description="The LoRA and training configuration, flattened.")
    metrics: dict[str, float] = Field(description="Training metrics, e.g. `train_loss`, `steps`.")
    files: dict[str, str] = Field(description="PEFT file name → hex SHA-256.")
    code_version: str = Field(description="Version of the training code.")
    created_at: str = Field(description="When training finished (RFC 3339).")
