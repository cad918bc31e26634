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
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a job was queued, so the runner looks at once instead of at its next poll."""
