"""The registry as inference sees it: versions and stages per model name, built from `cairn.models`.

Applied from `ModelRegisteredV1` / `ModelPromotedV1`, each event once (by event id), so replaying
the topic at start and then receiving the same events through the group subscription changes
nothing. A version holds one stage; a model holds at most one production version (a promotion to
production archives the previous one, as the evaluator's own `archived` event would). Other stages
may hold several versions; a stage reference picks the one promoted last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn_events import ModelPromotedV1, ModelRegisteredV1
from cairn_events.common import ModelStage

__all__ = ["ModelVersion", "RegistryView", "StageChange"]


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its adapter (none for the base model itself), base model and quantization."""

    model_name: str
    version: int
    adapter_uri: str | None
    base_model: str | None
    quantization: str | None = None
    """How its weights are served (`int8`); None: full precision."""

    @property
    def adapter_name(self) -> str | None:
        """The name the backend knows the adapter by, `cairn-qa:3`; None for a version without one."""
        return f"{self.model_name}:{self.version}" if self.adapter_uri else None


@dataclass(frozen=True)
class StageChange:
    """What one promotion did: the version that moved and the versions it archived (displaced)."""

    version: ModelVersion
    stage: ModelStage
    archived: tuple[ModelVersion, ...] = ()


@dataclass
class _Model:
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    stages: dict[int, ModelStage] = field(default_factory=dict)
    """version → stage, ordered by the last promotion (the latest promoted version comes last)."""


class RegistryView:
    """Versions and stages of every model named on `cairn.models`; pure, in memory."""

    def __init__(self) -> None:
        self._models: dict[str, _Model] = {}
        self._seen: set[str] = set()

    def _first_time(self, event_id: str | None) -> bool:
        if event_id is None:
            return True
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        return True

    def apply_registered(self, event: ModelRegisteredV1, event_id: str | None = None) -> ModelVersion | None:
        """Record a registered version (stage `dev` unless it already has one); None when seen before."""
        if not self._first_time(event_id):
            return None
        model = self._models.setdefault(event.model_name, _Model())
        version = ModelVersion(
            event.model_name,
            event.version,
            event.adapter_uri,
            event.base_model,
            event.quantization.value if event.quantization is not None else None,
        )
        model.versions[event.version] = version
        model.stages.setdefault(event.version, ModelStage.DEV)
        return version

    def apply_promoted(self, event: ModelPromotedV1, event_id: str | None = None) -> StageChange | None:
        """Move a version to `event.to_stage`; None when the event was applied before.

        A version promoted without a registration seen here is recorded from the promotion
        (its adapter URI travels on the event). Promoting to production archives the previous
        production version.
        """
        if not self._first_time(event_id):
            return None
        model = self._models.setdefault(event.model_name, _Model())
        known = model.versions.get(event.version)
        version = ModelVersion(
            event.model_name,
            event.version,
            event.adapter_uri if event.adapter_uri is not None else (known.adapter_uri if known else None),
            known.base_model if known else None,
            known.quantization if known else None,
        )
        model.versions[event.version] = version
        archived: list[ModelVersion] = []
        if event.to_stage is ModelStage.PRODUCTION:
            for other, stage in list(model.stages.items()):
                if stage is ModelStage.PRODUCTION and other != event.version:
                    model.stages[other] = ModelStage.ARCHIVED
                    archived.append(model.versions[other])
        model.stages.pop(event.version, None)
        model.stages[event.version] = event.to_stage
        return StageChange(version, event.to_stage, tuple(archived))

    def models(self) -> list[str]:
        """Every model name seen, sorted."""
        return sorted(self._models)

    def version(self, model_name: str, version: int) -> ModelVersion | None:
        """Version `version` of `model_name`, whatever its stage; None when unknown."""
        model = self._models.get(model_name)
        return model.versions.get(version) if model else None

    def versions(self, model_name: str) -> list[ModelVersion]:
        """Every version of `model_name`, by number."""
        model = self._models.get(model_name)
        return [model.versions[v] for v in sorted(model.versions)] if model else []

    def stage_of(self, model_name: str, version: int) -> ModelStage | None:
        """The stage of a version; None when unknown."""
        model = self._models.get(model_name)
        return model.stages.get(version) if model else None

    def in_stage(self, model_name: str, stage: ModelStage) -> ModelVersion | None:
        """The version of `model_name` promoted last to `stage` (the only one for production)."""
        model = self._models.get(model_name)
        if model is None:
            return None
        holders = [v for v, s in model.stages.items() if s is stage]
        return model.versions[holders[-1]] if holders else None

    def describe(self, model_name: str) -> str:
        """What the registry holds for `model_name`, in words (for error messages)."""
        model = self._models.get(model_name)
        if model is None or not model.versions:
            return "no versions"
        parts = [f"{v} ({model.stages.get(v, ModelStage.DEV).value})" for v in sorted(model.versions)]
        return "versions " + ", ".join(parts)
