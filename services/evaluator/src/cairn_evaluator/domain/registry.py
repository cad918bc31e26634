"""The model registry's records and rules: versions, stages, promotions, rollback targets.

One production version per model: promoting a version to production moves the version that was
there to archived, as a promotion of its own whose event id derives from the first one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cairn_bus.ids import derive_event_id
from cairn_events import JsonScalar, ModelPromotedV1, ModelRegisteredV1, ModelStage

__all__ = [
    "ModelVersion",
    "Promotion",
    "PromotionOutcome",
    "PromotionRequest",
    "Transition",
    "archive_event_id",
    "plan_promotion",
    "rollback_target",
    "version_at",
]


class ModelVersion(BaseModel):
    """One registered version of a model: lineage, training figures and its stage."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Registry model name, e.g. `cairn-qa`.")
    version: int = Field(ge=1, description="Version number within the model.")
    base_model: str = Field(description="The base model the version builds on.")
    adapter_uri: str | None = Field(None, description="Its LoRA adapter folder, if any.")
    quantization: str | None = Field(
        None, description="How inference serves its weights, e.g. `int8`; none: full precision."
    )
    dataset_id: str | None = Field(None, description="The dataset it was trained on, if tuned.")
    dataset_version: int | None = Field(None, description="The dataset version it was trained on.")
    job_id: str | None = Field(None, description="The tuning job that produced it, if tuned.")
    config: dict[str, JsonScalar] = Field({}, description="Training configuration, flattened.")
    metrics: dict[str, float] = Field({}, description="Training metrics.")
    code_version: str = Field("unknown", description="Version of the training code.")
    registered_at: datetime = Field(description="When it was registered.")
    stage: ModelStage = Field(ModelStage.DEV, description="Its registry stage.")

    @property
    def ref(self) -> str:
        """The model reference naming exactly this version, e.g. `cairn-qa:3`."""
        return f"{self.name}:{self.version}"

    @classmethod
    def from_event(cls, event: ModelRegisteredV1) -> ModelVersion:
        """The version a registration announces, at stage dev."""
        return cls(
            name=event.model_name,
            version=event.version,
            base_model=event.base_model,
            adapter_uri=event.adapter_uri,
            quantization=event.quantization.value if event.quantization is not None else None,
            dataset_id=event.dataset_id,
            dataset_version=event.dataset_version,
            job_id=event.job_id,
            config=dict(event.config),
            metrics=dict(event.metrics),
            code_version=event.code_version,
            registered_at=event.registered_at,
        )


@dataclass(frozen=True)
class Transition:
    """One version changing stage."""

    version: int
    from_stage: ModelStage | None
    to_stage: ModelStage


@dataclass(frozen=True)
class PromotionRequest:
    """Someone asks to move a version to a stage; `event_id` names the promotion (idempotency key)."""

    name: str
    version: int
    to_stage: ModelStage
    by: str
    reason: str
    event_id: str
    at: datetime
    evidence_run_id: str | None = None


@dataclass(frozen=True)
class Promotion:
    """A stage change as recorded in the history (and published as `model.promoted`)."""

    name: str
    version: int
    from_stage: ModelStage | None
    to_stage: ModelStage
    by: str
    reason: str
    at: datetime
    event_id: str
    cause_event_id: str
    """The requested promotion this one belongs to (itself, or the production move that archived it)."""
    evidence_run_id: str | None = None

    def to_event(self, adapter_uri: str | None) -> ModelPromotedV1:
        """The `model.promoted` event announcing this change."""
        return ModelPromotedV1(
            model_name=self.name,
            version=self.version,
            from_stage=self.from_stage,
            to_stage=self.to_stage,
            adapter_uri=adapter_uri,
            promoted_by=self.by,
            reason=self.reason,
            evidence_run_id=self.evidence_run_id,
            promoted_at=self.at,
        )


@dataclass(frozen=True)
class PromotionOutcome:
    """What a promotion did: `applied` is False when its event id was applied before (then
    `promotions` are the ones recorded that time) or when the version already had the stage."""

    applied: bool
    promotions: list[Promotion]


def archive_event_id(cause_event_id: str, name: str, version: int) -> str:
    """The event id of the archival a production promotion causes (the same wherever it is applied)."""
    return derive_event_id(cause_event_id, ModelPromotedV1.event_type, f"archive:{name}:{version}")


def plan_promotion(stages: Mapping[int, ModelStage], version: int, to_stage: ModelStage) -> list[Transition]:
    """The stage changes that promoting `version` to `to_stage` makes; empty when it is there already.

    Raises KeyError for an unknown version.
    """
    current = stages[version]
    if current is to_stage:
        return []
    moves = [Transition(version, current, to_stage)]
    if to_stage is ModelStage.PRODUCTION:
        moves += [
            Transition(other, ModelStage.PRODUCTION, ModelStage.ARCHIVED)
            for other, stage in sorted(stages.items())
            if other != version and stage is ModelStage.PRODUCTION
        ]
    return moves


def promotions_for(request: PromotionRequest, moves: Iterable[Transition]) -> list[Promotion]:
    """The history records of `moves` made for `request` (archivals get derived ids and their reason)."""
    out = []
    for move in moves:
        main = move.version == request.version
        out.append(
            Promotion(
                name=request.name,
                version=move.version,
                from_stage=move.from_stage,
                to_stage=move.to_stage,
                by=request.by,
                reason=request.reason if main else f"replaced in production by version {request.version}",
                at=request.at,
                event_id=request.event_id
                if main
                else archive_event_id(request.event_id, request.name, move.version),
                cause_event_id=request.event_id,
                evidence_run_id=request.evidence_run_id,
            )
        )
    return out


def version_at(versions: Iterable[ModelVersion], stage: ModelStage) -> ModelVersion | None:
    """The newest version at `stage`, if any."""
    found = [v for v in versions if v.stage is stage]
    return max(found, key=lambda v: v.version) if found else None


def rollback_target(history: Iterable[Promotion], current: int | None) -> int | None:
    """The version that was in production before `current`: the latest promotion to production of
    another version (history oldest first); None when there is none."""
    for promotion in reversed(list(history)):
        if promotion.to_stage is ModelStage.PRODUCTION and promotion.version != current:
            return promotion.version
    return None
