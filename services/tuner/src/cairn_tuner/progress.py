"""Training progress from the worker thread to the bus, at most one event per interval, the last always."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from cairn_observability import get_logger
from cairn_tuner.domain.jobs import StepReport

log = get_logger("cairn.tuner")


class ThrottledProgress:
    """Takes step reports from any thread (`report`) and hands the latest to `send` on the event loop, no
    more often than every `interval_s`; `close` sends the last report if it was not sent yet."""

    def __init__(self, send: Callable[[StepReport], Awaitable[None]], interval_s: float) -> None:
        self.send = send
        self.interval_s = interval_s
        self.latest: StepReport | None = None
        self.sent_step: int | None = None
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._pump = asyncio.create_task(self._run(), name="cairn-tuner-progress")

    def report(self, step: StepReport) -> None:
        """Record a step (thread-safe; called from the training thread)."""
        self.latest = step
        self._loop.call_soon_threadsafe(self._ready.set)

    async def _flush(self) -> None:
        latest = self.latest
        if latest is None or latest.step == self.sent_step:
            return
        try:
            await self.send(latest)
        except Exception as exc:  # progress is best effort: training goes on, the next step retries
            log.warning("progress not sent", step=latest.step, error=repr(exc))
        else:
            self.sent_step = latest.step

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self._flush()
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        """Stop the pump and send the last report if it is still unsent."""
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        await self._flush()
