"""What the evaluator's handlers, API, CLI and periodic checks are given: `Deps`, the clock and the log.

Imports no handler module and starts nothing: `bootstrap.build` fills `Deps`, `app.py` runs the
service around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cairn_bus import Publisher
from cairn_bus.objects import ObjectStore
from cairn_evaluator.adapters.memory_online import InMemoryOnlineStore
from cairn_evaluator.adapters.memory_shadow import InMemoryShadowStore
from cairn_evaluator.domain.shadow import Shadow
from cairn_evaluator.observer import OnlineObserver
from cairn_evaluator.ports import Embedder, OnlineStore, Registry, RunStore, ShadowStore, SuiteSource
from cairn_evaluator.settings import Settings
from cairn_observability import get_logger

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring
    from cairn_auth.serving import HttpServer

log = get_logger("cairn.evaluator")


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """What the evaluator's handlers, CLI and periodic checks need."""

    registry: Registry
    runs: RunStore
    suites: SuiteSource
    objects: ObjectStore
    publisher: Publisher
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    finishing: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a run is being finished, so the periodic check and a handler never race in-process."""
    online: OnlineStore = field(default_factory=InMemoryOnlineStore)
    """Live traffic records and alert firings (the online part)."""
    shadows: ShadowStore = field(default_factory=InMemoryShadowStore)
    """Shadows, the live requests they mirrored and both sides' answers (shadow traffic)."""
    active_shadows: list[Shadow] | None = None
    """The enabled shadows as last read (`shadow.active_shadows`); None: read them again."""
    shadows_read_at: float = 0.0
    """When (`time.monotonic`) `active_shadows` was read."""
    embedder: Embedder | None = None
    """Embeds answers, chunks and questions; None: lexical groundedness and no request embeddings."""
    observer: OnlineObserver | None = None
    """Runs live-traffic observations off the consumer's path (the service); none: inline (tests, CLI)."""
    pool: Any = None
    """The PostgreSQL pool the stores share, when they are PostgreSQL's (the API checks keys there)."""
    http: HttpServer | None = None
    """Where the registry API listens, when the service serves it (`app.serve_evaluator`)."""
    dataset_keyring: Keyring | None = None
    """Opens held-out rows sealed per tenant (`cairn_auth.object_keys`); None: no master key."""
