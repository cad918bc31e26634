"""What the store keeps: immutable versions, label positions and their history, prompt summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.domain.tenants import SHARED_TENANT


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a prompt."""

    name: str
    version: int
    spec: PromptSpec
    content_hash: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class PushResult:
    """The version a push produced, and whether it is new (identical content reuses the old one)."""

    version: PromptVersion
    created: bool


@dataclass(frozen=True)
class LabelMove:
    """A label pointed at a version (from `previous`, none when the label is new), by whom and when."""

    name: str
    label: str
    version: int
    previous: int | None
    moved_by: str
    moved_at: datetime


@dataclass(frozen=True)
class PromptSummary:
    """A prompt in listings: its latest version, labels and running experiment."""

    name: str
    latest_version: int
    description: str
    labels: dict[str, int] = field(default_factory=dict)
    experiment: str | None = None
    updated_at: datetime | None = None
    tenant: str = SHARED_TENANT
