"""What the tuner's handlers and job runner are given: `Deps` and the clock.

Imports no handler, runner or adapter and starts nothing: `bootstrap.build` fills `Deps` (and runs the
job runner on it), `app.py` runs the service around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cairn_bus import Publisher
from cairn_bus.policy_files import TenantPolicyFiles
from cairn_tuner.domain.tune_policy import TunePolicy
from cairn_tuner.ports import JobRepository, Trainer
from cairn_tuner.settings import Settings


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """What the tuner's handlers and runner need."""

    settings: Settings
    repo: JobRepository
    publisher: Publisher
    trainer: Trainer
    code_version: str
    clock: Callable[[], datetime] = utc_now
    tune_policies: TenantPolicyFiles[TunePolicy] | None = None
    """Per-dataset tuning policies (`CAIRN_TUNE_POLICY_DIR`), re-read when a file changes; None: only
    the global policy (`tune_min_rows`)."""
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a job was queued, so the runner looks at once instead of at its next poll."""
