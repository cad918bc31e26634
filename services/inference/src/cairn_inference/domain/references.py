"""Model references (the `model` of a request) resolved against the registry view, and the canary.

Forms (docs/closed-loop.md, "Names"):
- none → the production version of the served model; the base model when it has none;
- `cairn-qa` → its production version; `cairn-qa@staging` → the version promoted last to that stage;
- `cairn-qa:3` → version 3, whatever its stage;
- the base model's own name → the base model, no adapter;
- anything else → `UnknownModelError`, naming the reference and what exists.

Canary: a share of the requests that name the served model implicitly (none, or its bare name)
goes to its staging version, chosen by a stable hash of the request id (sticky per request).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cairn_events.common import ModelStage
from cairn_inference.domain.completion import ModelError
from cairn_inference.domain.registry import ModelVersion, RegistryView

__all__ = ["ResolvedModel", "UnknownModelError", "canary_bucket", "resolve"]


class UnknownModelError(ModelError):
    """A model reference that names nothing the registry (or the base model) can serve."""


@dataclass(frozen=True)
class ResolvedModel:
    """What serves a request, and how responses name it."""

    model: str
    """The registry model name, or the base model's name when the base answers outside the registry."""
    version: int | None
    """The registry version; None for the base model outside the registry."""
    adapter: str | None
    """The adapter's name on the backend (`cairn-qa:3`); None for a version without adapter."""
    adapter_uri: str | None
    """Where the adapter's files are (`s3://cairn/adapters/<job>/`); None without adapter."""
    canary: bool = False
    """Whether the canary share sent this request to the staging version."""
    quantization: str | None = None
    """How the version's weights are served (`int8`); None: full precision."""

    @property
    def model_version(self) -> str | None:
        """The version as events carry it (`"3"`), or None."""
        return None if self.version is None else str(self.version)

    @classmethod
    def of(cls, version: ModelVersion, *, canary: bool = False) -> ResolvedModel:
        """A registry version as resolved."""
        return cls(
            version.model_name,
            version.version,
            version.adapter_name,
            version.adapter_uri,
            canary,
            version.quantization,
        )

    @classmethod
    def base(cls, base_model: str) -> ResolvedModel:
        """The base model, answering outside the registry."""
        return cls(base_model, None, None, None)


def canary_bucket(request_id: str) -> float:
    """A stable number in [0, 1) for a request id: the same id always lands in the same bucket."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def resolve(
    reference: str | None,
    view: RegistryView,
    *,
    served_model: str,
    base_model: str,
    request_id: str = "",
    canary_share: float = 0.0,
) -> ResolvedModel:
    """What serves `reference` (see the module docstring); raises UnknownModelError when nothing does."""
    if reference is None or reference == served_model:
        production = view.in_stage(served_model, ModelStage.PRODUCTION)
        if production is None:
            if reference is None:
                return ResolvedModel.base(base_model)
            raise _unknown(reference, view, base_model, "has no production version")
        staging = view.in_stage(served_model, ModelStage.STAGING)
        if staging is not None and canary_share > 0 and canary_bucket(request_id) < canary_share:
            return ResolvedModel.of(staging, canary=True)
        return ResolvedModel.of(production)
    if reference == base_model:
        return ResolvedModel.base(base_model)
    name, version = _parse(reference)
    if name is None or not view.versions(name):
        raise _unknown(reference, view, base_model, "is not served here")
    if isinstance(version, int):
        found = view.version(name, version)
        if found is None:
            raise _unknown(reference, view, base_model, f"has no version {version}")
        return ResolvedModel.of(found)
    stage = version or ModelStage.PRODUCTION
    found = view.in_stage(name, stage)
    if found is None:
        raise _unknown(reference, view, base_model, f"has no {stage.value} version")
    return ResolvedModel.of(found)


def _parse(reference: str) -> tuple[str | None, int | ModelStage | None]:
    """`name` → (name, None); `name:3` → (name, 3); `name@staging` → (name, STAGING); bad → (None, None)."""
    if "@" in reference:
        name, _, stage = reference.partition("@")
        try:
            return (name or None), ModelStage(stage)
        except ValueError:
            return None, None
    if ":" in reference:
        name, _, number = reference.partition(":")
        if not number.isdigit() or int(number) < 1:
            return None, None
        return (name or None), int(number)
    return reference, None


def _unknown(reference: str, view: RegistryView, base: str, problem: str) -> UnknownModelError:
    name, _ = _parse(reference)
    if name is not None and view.versions(name):
        detail = f"{name} has {view.describe(name)}"
    else:
        detail = "models served: " + ", ".join([f"{base} (base)", *view.models()])
    return UnknownModelError(f"model reference {reference!r} {problem}; {detail}")
