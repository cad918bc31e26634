"""Publishing a streaming request's deltas (`cairn.completion_delta.generated.v1`) while it generates.

Only a request whose `params.stream` is set streams (the gateway sets it for `stream: true`), and
never a replay or shadow request (nobody streams those). The backend's progress reports arrive from
its worker thread; they are handed to the event loop and turned into deltas by `DeltaChunker`.
Each delta's event id is derived from the input's id and the delta's index, so a redelivered input
that generates the same text publishes the same events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

from cairn_bus import EventMeta, Publisher
from cairn_events import CompletionDeltaGeneratedV1, InputScreenedV1
from cairn_inference.domain.completion import Completion
from cairn_inference.domain.deltas import DeltaChunker
from cairn_observability import get_logger

__all__ = ["DeltaStream", "streams"]

log = get_logger("cairn.inference.streaming")


def streams(event: InputScreenedV1, meta: EventMeta) -> bool:
    """Whether deltas are published for this input."""
    return event.params.stream and meta.replay_id is None


class DeltaStream:
    """The deltas of one generation: `progress` is the backend's callback (any thread), `finish`
    publishes the last delta once the completion is known."""

    def __init__(
        self,
        event: InputScreenedV1,
        meta: EventMeta,
        publisher: Publisher,
        model: str,
        *,
        every_tokens: int = 8,
        every_s: float = 0.25,
    ) -> None:
        self.event, self.meta, self.publisher, self.model = event, meta, publisher, model
        self.chunker = DeltaChunker(event.params.stop, every_tokens, every_s)
        self._loop = asyncio.get_running_loop()
        self._reports: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()
        self._tokens = 0
        self._task = asyncio.create_task(self._run(), name=f"deltas-{event.request_id}")

    @property
    def started(self) -> bool:
        """Whether a delta went out: the request can no longer change model (routing's fallback)."""
        return bool(self.chunker.sent)

    def progress(self, text: str, tokens: int) -> None:
        """The backend's report of the text and tokens so far (thread-safe)."""
        self._loop.call_soon_threadsafe(self._reports.put_nowait, (text, tokens))

    async def _run(self) -> None:
        while (report := await self._reports.get()) is not None:
            text, tokens = report
            self._tokens = max(self._tokens, tokens)
            offset = len(self.chunker.sent)
            piece = self.chunker.offer(text, tokens, time.monotonic())
            if piece:
                await self._publish(self.chunker.index - 1, offset, piece, last=False, finish=None)

    async def finish(self, completion: Completion) -> None:
        """Publish the rest of `completion`'s text as the last delta (after the reports so far)."""
        self._reports.put_nowait(None)
        await self._task
        offset, rest = self.chunker.finish(completion.text)
        await self._publish(
            self.chunker.index - 1,
            offset,
            rest,
            last=True,
            finish=completion.finish_reason,
            tokens=completion.usage.output_tokens,
        )

    async def abandon(self) -> None:
        """Stop publishing (the generation failed: its failed response ends the request)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def _publish(
        self, index: int, offset: int, text: str, *, last: bool, finish: str | None, tokens: int | None = None
    ) -> None:
        delta = CompletionDeltaGeneratedV1(
            request_id=self.event.request_id,
            tenant=self.event.tenant,
            index=index,
            offset=offset,
            text=text,
            output_tokens=self._tokens if tokens is None else tokens,
            last=last,
            finish_reason=finish,
            model=self.model,
            generated_at=datetime.now(UTC),
        )
        await self.publisher.publish(delta, cause=self.meta, discriminator=f"delta-{index}")
