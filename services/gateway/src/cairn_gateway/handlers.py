"""The gateway's consumed events: a response, kept when this replica waits for it; a delta, kept
when one of this replica's streams watches its request."""

from __future__ import annotations

from cairn_bus import EventMeta
from cairn_events import CompletionDeltaGeneratedV1, ResponseCompletedV1
from cairn_gateway.deps import Deps


async def on_response_completed(event: ResponseCompletedV1, meta: EventMeta, deps: Deps) -> None:
    """Hand the response to this replica's waiters; another replica's response is dropped."""
    await deps.replies.deliver(event)


async def on_completion_delta(event: CompletionDeltaGeneratedV1, meta: EventMeta, deps: Deps) -> None:
    """Hand the delta to this replica's stream of its request; any other delta is dropped."""
    deps.replies.deliver_delta(event)
