"""Sticky A/B experiments: a prompt's traffic split over versions or labels by a stable hash."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn_events.base import ID_PATTERN, PROMPT_NAME_PATTERN
from cairn_prompt_store.domain.refs import LABEL_PATTERN, PRODUCTION


def _config() -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Variant(BaseModel):
    """One arm of an experiment: a version or a label of the prompt, and its share of traffic."""

    model_config = _config()

    name: str = Field(pattern=ID_PATTERN, description="The variant's name, recorded on each request.")
    version: int | None = Field(None, ge=1, description="The prompt version this arm renders.")
    label: str | None = Field(
        None, pattern=LABEL_PATTERN, description="Or the label whose version this arm renders."
    )
    weight: float = Field(1.0, ge=0.0, description="Relative share of traffic (0 pauses the arm).")

    @model_validator(mode="after")
    def _one_target(self) -> Variant:
        if (self.version is None) == (self.label is None):
            raise ValueError(f"variant {self.name!r} needs exactly one of `version` and `label`")
        return self

    @property
    def target(self) -> str:
        """`@label` or `:version`, for display."""
        return f"@{self.label}" if self.label is not None else f":{self.version}"


class Experiment(BaseModel):
    """Splits the requests that resolve a prompt through `label` over `variants`, sticky per user."""

    model_config = _config()

    name: str = Field(pattern=ID_PATTERN, description="Experiment id, recorded on each request.")
    prompt: str = Field(pattern=PROMPT_NAME_PATTERN, description="The prompt whose traffic is split.")
    label: str = Field(
        PRODUCTION,
        pattern=LABEL_PATTERN,
        description="Requests resolving through this label join the experiment (bare names resolve "
        "through `production`); pinned versions and other labels bypass it.",
    )
    variants: list[Variant] = Field(min_length=1, description="The arms.")
    on_winner: Literal["promote", "propose"] = Field(
        "propose",
        description="When the evaluator finds a significant winner: `promote` moves `label` to the "
        "winner's version and ends the experiment; `propose` records a proposal for an operator.",
    )

    @model_validator(mode="after")
    def _valid_split(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if sum(v.weight for v in self.variants) <= 0:
            raise ValueError("at least one variant needs a positive weight")
        return self

    def assign(self, subject: str) -> Variant:
        """The variant of `subject` (a user id, else the request id): the same every time it asks.

        A stable hash of (experiment, subject) picks a point in [0, 1), which falls in one arm's
        share of the cumulative weights.
        """
        point = bucket(self.name, subject) * sum(v.weight for v in self.variants)
        live = [v for v in self.variants if v.weight > 0]
        upper = 0.0
        for variant in live:
            upper += variant.weight
            if point < upper:
                return variant
        return live[-1]  # float rounding at the very top


def bucket(experiment: str, subject: str) -> float:
    """A point in [0, 1) fixed by the experiment and the subject (sha256, not Python's salted hash)."""
    digest = hashlib.sha256(f"{experiment}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


WinnerPolicy = Literal["promote", "propose"]
"""What happens to an experiment's significant winner (`Experiment.on_winner`)."""
