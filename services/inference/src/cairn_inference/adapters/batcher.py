"""Dynamic batching: concurrent requests that arrive within a short window share one batched run.

The batcher lives on the event loop; the batched run happens in a single worker thread, so the
loop stays free while the model computes and the model only ever runs one batch at a time.
Which requests share a batch and when it starts are decided by `domain.batching`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cairn_inference.domain.batching import BatchKey, dispatch_delay, plan_batch
from cairn_inference.domain.completion import BackendUnavailableError

__all__ = ["BatchItem", "DynamicBatcher"]

R = TypeVar("R")


@dataclass
class BatchItem:
    """What the batcher knows of one request: its batch key, arrival time and cancellation flag.

    `payload` is the backend's own request; the batched run reads `cancelled` (set from the
    event loop when the caller gives up) to stop working on it.
    """

    payload: object
    key: BatchKey
    enqueued_at: float = field(default_factory=time.perf_counter)
    cancelled: threading.Event = field(default_factory=threading.Event)


RunBatch = Callable[[Sequence[BatchItem]], Sequence[R]]


class DynamicBatcher(Generic[R]):
    """Collects concurrent `submit` calls into batches for `run_batch` (called in a worker thread).

    `run_batch(items)` returns one result per item, in order; an exception fails every item of
    that batch. With `max_batch_size=1` (batching off) requests run one at a time, in order.
    """

    def __init__(
        self,
        run_batch: RunBatch[R],
        *,
        max_batch_size: int,
        window_s: float,
        executor: Executor | None = None,
        history: int = 1024,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-generate")
        self._waiting: deque[tuple[BatchItem, asyncio.Future[R]]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._running: list[BatchItem] = []
        self.batch_sizes: deque[int] = deque(maxlen=history)
        """Sizes of the most recent batches run, oldest first (for tests and benchmarks)."""

    @property
    def waiting(self) -> int:
        """Requests queued or running now."""
        return len(self._waiting) + len(self._running)

    async def submit(self, payload: object, key: BatchKey) -> R:
        """Queue one request and wait for its result. Cancelling the caller abandons the request."""
        if self._closed:
            raise BackendUnavailableError("the model backend is shut down")
        loop = asyncio.get_running_loop()
        self._start(loop)
        item = BatchItem(payload, key)
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            item.cancelled.set()
            future.cancel()
            raise

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._waiting = deque((item, fut) for item, fut in self._waiting if fut.get_loop() is loop)
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._loop(), name="cairn-inference-batcher")

    async def _loop(self) -> None:
        assert self._wakeup is not None
        while not self._closed:
            self._drop_abandoned()
            if not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            delay = dispatch_delay(
                time.perf_counter(),
                self._waiting[0][0].enqueued_at,
                self.window_s,
                self._same_key_waiting(),
                self.max_batch_size,
            )
            if delay > 0:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
                continue
            await self._run_next()

    def _drop_abandoned(self) -> None:
        kept = [(item, fut) for item, fut in self._waiting if not fut.done()]
        if len(kept) != len(self._waiting):
            self._waiting = deque(kept)

    def _same_key_waiting(self) -> int:
        first = self._waiting[0][0].key
        if first is None:
            return self.max_batch_size  # runs alone: nothing to wait for
        return sum(1 for item, _ in self._waiting if item.key == first)

    async def _run_next(self) -> None:
        picked = plan_batch([item.key for item, _ in self._waiting], self.max_batch_size)
        chosen = [self._waiting[i] for i in picked]
        for index in sorted(picked, reverse=True):
            del self._waiting[index]
        items = [item for item, _ in chosen]
        self.batch_sizes.append(len(items))
        loop = asyncio.get_running_loop()
        self._running = items
        try:
            results = await loop.run_in_executor(self.executor, self._run_batch, items)
        except Exception as exc:
            for _, future in chosen:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._running = []
        for (_, future), result in zip(chosen, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        """Fail waiting requests, stop the batching task and the worker thread."""
        self._closed = True
        for item in self._running:
            item.cancelled.set()
        for item, future in self._waiting:
            item.cancelled.set()
            if not future.done():
                future.set_exception(BackendUnavailableError("the model backend is shut down"))
        self._waiting.clear()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        if self._own_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)
