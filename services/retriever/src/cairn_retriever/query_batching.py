"""Query embeddings of concurrent requests in one model call.

The retriever spends most of a request embedding its query (one MiniLM forward pass per query).
With the consumer handling several requests of a batch at once (`consumer_concurrency`), their
queries reach `QueryBatcher.embed` within milliseconds of each other; the batcher waits up to
`window_ms` for others to join (or until `max_batch` are waiting) and embeds them together with one
call of `embed_many` (for MiniLM: one batched forward pass). A lone query waits at most the window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

__all__ = ["QueryBatcher"]


class QueryBatcher:
    """Groups concurrent `embed` calls into batched `embed_many` calls (in a worker thread)."""

    def __init__(
        self,
        embed_many: Callable[[Sequence[str]], list[list[float]]],
        *,
        window_ms: float = 5.0,
        max_batch: int = 32,
    ) -> None:
        self.embed_many = embed_many
        self.window_s = window_ms / 1000
        self.max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self.batches = 0
        """How many model calls were made (for tests and benchmarks)."""

    async def embed(self, text: str) -> list[float]:
        """The vector of `text`, embedded together with whatever other queries arrive meanwhile."""
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if len(self._pending) >= self.max_batch:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_after_window())
        return await future

    async def _flush_after_window(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._full.wait(), self.window_s)
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._full.clear()
            await self._run(batch)

    async def _run(self, batch: Sequence[tuple[str, asyncio.Future[list[float]]]]) -> None:
        texts = [text for text, _ in batch]
        try:
            vectors = await asyncio.to_thread(self.embed_many, texts)
        except Exception as exc:  # every waiter learns the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        for (_, future), vector in zip(batch, vectors, strict=True):
            if not future.done():
                future.set_result(vector)
