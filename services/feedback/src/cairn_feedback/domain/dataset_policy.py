"""Dataset policies: which datasets the feedback service builds by itself, and when.

A policy names a dataset and how to curate it (the rules, held-out share and seed of `cairn datasets
build`). A new version is built once feedback has been quiet for `quiet_s` seconds and the rules select
at least `min_rows` rows, `min_new_rows` of them not in the latest version; the tuner's own policy then
decides whether the version is tuned. One YAML file per dataset, named after it (`<dataset>.yaml`).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cairn_events.base import ID_PATTERN
from cairn_feedback.domain.curation import DEFAULT_HELDOUT
from cairn_feedback.domain.records import RowProvenance
from cairn_feedback.domain.rules import parse_rules

__all__ = ["DatasetPolicy", "new_row_count", "row_key"]


class DatasetPolicy(BaseModel):
    """When and how one dataset's next version is built without an operator (`<dataset>.yaml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ID_PATTERN, description="The dataset (the file's name without `.yaml`).")
    rules: list[str] = Field(
        ["corrected"],
        min_length=1,
        description="Curation rules, as `cairn datasets build --rule` takes them.",
    )
    heldout: float = Field(DEFAULT_HELDOUT, ge=0.0, lt=1.0, description="Share of rows held out.")
    seed: int = Field(0, description="Seed of the held-out split.")
    min_rows: int = Field(1, ge=1, description="A version needs at least this many rows.")
    min_new_rows: int = Field(
        1, ge=1, description="…and at least this many rows that are not in the latest version."
    )
    quiet_s: float = Field(
        10.0,
        ge=0.0,
        description="Seconds without new feedback before a build, so a burst becomes one version.",
    )

    @field_validator("rules")
    @classmethod
    def _rules_parse(cls, rules: list[str]) -> list[str]:
        parse_rules(rules)  # raises InvalidRuleError (a ValueError) naming the bad rule
        return rules


def row_key(row: RowProvenance) -> str:
    """What makes a row the same row in two versions: its feedback, or its request for a teacher row."""
    return row.feedback_id if row.feedback_id is not None else f"request:{row.request_id}"


def new_row_count(rows: Iterable[RowProvenance], previous: Iterable[RowProvenance]) -> int:
    """How many of `rows` the previous version did not have."""
    seen = {row_key(r) for r in previous}
    return sum(1 for r in rows if row_key(r) not in seen)
