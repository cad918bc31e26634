"""Tuning policies per dataset: which published dataset versions get a tuning job without an operator.

One YAML file per dataset (`<dataset>.yaml` in `CAIRN_TUNE_POLICY_DIR`). A version with at least
`min_rows` training rows gets a job on `base_model` with `config`; what a file leaves out comes from the
tuner's settings (the global growth policy's defaults). A dataset without a file falls under the global
policy (`CAIRN_TUNE_MIN_ROWS`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cairn_events import LoraConfig
from cairn_events.base import ID_PATTERN

__all__ = ["TunePolicy"]


class TunePolicy(BaseModel):
    """When a dataset's new version is tuned, on what and how (`<dataset>.yaml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ID_PATTERN, description="The dataset (the file's name without `.yaml`).")
    min_rows: int = Field(1, ge=1, description="A version with at least this many training rows is tuned.")
    base_model: str | None = Field(None, description="The base model of its jobs; none: the tuner's setting.")
    config: dict[str, Any] = Field(
        {},
        description="The jobs' LoRA configuration (`LoraConfig` fields, start_from and replay_fraction "
        "included); a field left out is the settings' default.",
    )

    @field_validator("config")
    @classmethod
    def _known_fields(cls, config: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(config) - set(LoraConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown LoRA field(s) {', '.join(unknown)}")
        return config

    def lora_config(self, defaults: LoraConfig) -> LoraConfig:
        """The jobs' configuration: `config` over `defaults`; raises ValidationError for a bad value."""
        return LoraConfig.model_validate({**defaults.model_dump(), **self.config})
