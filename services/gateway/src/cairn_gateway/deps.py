"""What the gateway's API and handler need (built by `bootstrap.build`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cairn_bus import Publisher
from cairn_gateway.ports import AnsweredRequests, Catalogue
from cairn_gateway.replies import ReplyBook
from cairn_gateway.settings import Settings

if TYPE_CHECKING:
    from cairn_auth.serving import HttpServer
    from cairn_gateway.console import Console


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """What the gateway's API and handler need."""

    answered: AnsweredRequests
    catalogue: Catalogue
    publisher: Publisher
    replies: ReplyBook = field(default_factory=ReplyBook)
    default_prompt: str = "qa"
    answer_timeout_s: float = 120.0
    idempotency_retention_s: float = 86_400.0
    clock: Callable[[], datetime] = utc_now
    stream_holdback_chars: int = 64
    """A streamed answer's last characters kept unsent until output screening's verdict."""
    stream_verdict_first_tenants: frozenset[str] = frozenset()
    """Tenants whose streamed answers are released only after the verdict (nothing before it)."""
    http: HttpServer | None = None
    """Where the API listens, when the service serves it."""
    console: Console | None = None
    """The operator console's parts; None: no console is served."""

    @classmethod
    def of(
        cls, settings: Settings, answered: AnsweredRequests, catalogue: Catalogue, publisher: Publisher
    ) -> Deps:
        """Deps with the timing and defaults of `settings`."""
        return cls(
            answered=answered,
            catalogue=catalogue,
            publisher=publisher,
            default_prompt=settings.gateway_default_prompt,
            answer_timeout_s=settings.gateway_answer_timeout_s,
            idempotency_retention_s=settings.gateway_idempotency_retention_s,
            stream_holdback_chars=settings.gateway_stream_holdback_chars,
            stream_verdict_first_tenants=frozenset(settings.gateway_stream_verdict_first_tenants),
        )
