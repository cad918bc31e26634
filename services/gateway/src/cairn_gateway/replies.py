"""Replies to this replica's own requests.

Every gateway replica reads `cairn.responses` from its end (no consumer group: each replica sees
every response) and hands each response to `ReplyBook.deliver`, which keeps only the ones this
replica is waiting for and drops the rest. An HTTP request registers its request id before its event
is published, so its answer cannot pass by unseen.

A request sent with an Idempotency-Key is also kept with a `keeper` (it stores answers in the
idempotency table) until its row there expires: an answer that comes after the HTTP request stopped
waiting (a timeout), and the final answer of a request `held` for human review, are stored for the
retry with the same key.

A streaming request also `watch`es its deltas (`cairn.completions.deltas`, read the same way): each
delta of a watched request is put on the watcher's queue (`deliver_delta`); other deltas are dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cairn_events import CompletionDeltaGeneratedV1, ResponseCompletedV1, ResponseStatus
from cairn_observability import get_logger

Keeper = Callable[[ResponseCompletedV1], Awaitable[None]]
log = get_logger("cairn.gateway.replies")


@dataclass
class _Entry:
    waiters: list[asyncio.Future[ResponseCompletedV1]] = field(default_factory=list)
    watchers: list[asyncio.Queue[CompletionDeltaGeneratedV1]] = field(default_factory=list)
    keeper: Keeper | None = None
    keep_until: float = 0.0


class ReplyBook:
    """Request ids this replica waits for or keeps answers of, and the futures their answers resolve."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, _Entry] = {}
        self._clock = clock
        self.dropped = 0
        """Responses seen that were not this replica's (for tests and debugging)."""
        self.dropped_deltas = 0
        """Deltas seen that no stream of this replica watched."""

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def expect(self, request_id: str) -> asyncio.Future[ResponseCompletedV1]:
        """A future resolved by the next response to `request_id`; register it before publishing."""
        future: asyncio.Future[ResponseCompletedV1] = asyncio.get_running_loop().create_future()
        self._entries.setdefault(request_id, _Entry()).waiters.append(future)
        return future

    def release(self, request_id: str, future: asyncio.Future[ResponseCompletedV1]) -> None:
        """Stop waiting with `future` (its HTTP request ended); the entry goes when nothing else waits
        and no keeper keeps it."""
        entry = self._entries.get(request_id)
        if entry is None:
            return
        if future in entry.waiters:
            entry.waiters.remove(future)
        future.cancel()
        self._forget_if_idle(request_id, entry)

    def watch(self, request_id: str) -> asyncio.Queue[CompletionDeltaGeneratedV1]:
        """A queue that gets every delta of `request_id` from now on; register it before publishing."""
        queue: asyncio.Queue[CompletionDeltaGeneratedV1] = asyncio.Queue()
        self._entries.setdefault(request_id, _Entry()).watchers.append(queue)
        return queue

    def unwatch(self, request_id: str, queue: asyncio.Queue[CompletionDeltaGeneratedV1]) -> None:
        """Stop putting deltas on `queue` (its stream ended)."""
        entry = self._entries.get(request_id)
        if entry is None:
            return
        if queue in entry.watchers:
            entry.watchers.remove(queue)
        self._forget_if_idle(request_id, entry)

    def deliver_delta(self, delta: CompletionDeltaGeneratedV1) -> bool:
        """Put `delta` on its request's watchers' queues; False when none watches it (dropped)."""
        entry = self._entries.get(delta.request_id)
        if entry is None or not entry.watchers:
            self.dropped_deltas += 1
            return False
        for queue in entry.watchers:
            queue.put_nowait(delta)
        return True

    def keep(self, request_id: str, keeper: Keeper, seconds: float) -> None:
        """Hand every answer to `request_id` to `keeper` for the next `seconds`, until a final one
        (not `held`) has been handed over."""
        if seconds <= 0:
            return
        entry = self._entries.setdefault(request_id, _Entry())
        entry.keeper = keeper
        entry.keep_until = self._clock() + seconds

    def kept(self, request_id: str) -> bool:
        """Whether answers to `request_id` are kept."""
        entry = self._entries.get(request_id)
        return entry is not None and entry.keeper is not None and entry.keep_until > self._clock()

    def _forget_if_idle(self, request_id: str, entry: _Entry) -> None:
        if (
            not entry.waiters
            and not entry.watchers
            and (entry.keeper is None or entry.keep_until <= self._clock())
        ):
            self._entries.pop(request_id, None)

    async def deliver(self, response: ResponseCompletedV1) -> bool:
        """Resolve the waiters of `response`'s request and hand it to its keeper; False when this
        replica neither waits for it nor keeps it (the response is dropped)."""
        entry = self._entries.get(response.request_id)
        if entry is None:
            self.dropped += 1
            return False
        for future in entry.waiters:
            if not future.done():
                future.set_result(response)
        entry.waiters.clear()
        keeper = entry.keeper if entry.keep_until > self._clock() else None
        if response.status is not ResponseStatus.HELD:
            entry.keeper = None  # a final answer ends the keeping
        if keeper is not None:
            try:
                await keeper(response)
            except Exception as exc:  # the table serves retries: never stop reading responses
                log.warning("answer not kept", request_id=response.request_id, error=repr(exc))
        self._forget_if_idle(response.request_id, entry)
        return True

    def sweep(self) -> int:
        """Forget kept ids whose time is up and nothing waits for; how many were forgotten."""
        now = self._clock()
        stale = [
            rid
            for rid, e in self._entries.items()
            if not e.waiters and not e.watchers and e.keep_until <= now
        ]
        for rid in stale:
            self._entries.pop(rid, None)
        return len(stale)
