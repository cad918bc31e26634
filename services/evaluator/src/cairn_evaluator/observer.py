"""Live-traffic observation off the consumer's path: a bounded queue and one worker.

Scoring groundedness and embedding questions costs a model call per event; done inside the
handlers, a burst of live traffic would hold back everything else the evaluator consumes on the
same subscription (registrations, promotions, evaluation answers). The handlers hand observations
to this queue instead and return. Observations are samples for monitoring: when the queue is full
the newest is dropped (and counted), and observations still queued when the process dies are lost —
never requests, registrations or evaluation answers, which the handlers record themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from cairn_observability import get_logger

log = get_logger("cairn.evaluator.observer")

Observation = Callable[[], Awaitable[Any]]


class OnlineObserver:
    """Runs observations one at a time in a background task; `submit` never waits."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.queue: asyncio.Queue[Observation] = asyncio.Queue(maxsize=capacity)
        self.dropped = 0
        self.done = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="cairn-evaluator-observer")

    async def stop(self, drain_s: float = 5.0) -> None:
        """Give queued observations `drain_s` seconds to finish, then stop the worker."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), drain_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def submit(self, observation: Observation) -> bool:
        """Queue an observation; False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(observation)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("observation queue full; live-traffic samples dropped", dropped=self.dropped)
            return False
        return True

    async def _work(self) -> None:
        while True:
            observation = await self.queue.get()
            try:
                await observation()
                self.done += 1
            except Exception as exc:  # one bad sample must not stop the observer
                log.warning("observation failed", error=repr(exc))
            finally:
                self.queue.task_done()
