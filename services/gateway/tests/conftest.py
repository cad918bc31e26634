"""Shared pieces of the gateway's tests: a fake request path that answers every submitted request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cairn_bus import InMemoryPublisher, OutgoingMessage
from cairn_events import CompletionDeltaGeneratedV1, RequestSubmittedV1, ResponseCompletedV1, TokenUsage
from cairn_gateway.app import router
from cairn_gateway.replies import ReplyBook

NOW = datetime(2025, 3, 4, 9, 15, 22, tzinfo=UTC)


def deltas_of(request: RequestSubmittedV1, text: str, size: int = 10) -> list[CompletionDeltaGeneratedV1]:
    """The deltas inference would publish for `text`, `size` characters each."""
    pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    return [
        CompletionDeltaGeneratedV1(
            request_id=request.request_id,
            tenant=request.tenant,
            index=i,
            offset=i * size,
            text=piece,
            output_tokens=i + 1,
            last=i == len(pieces) - 1,
            finish_reason="stop" if i == len(pieces) - 1 else None,
            model="cairn-qa",
            generated_at=NOW,
        )
        for i, piece in enumerate(pieces)
    ]


def answer(request: RequestSubmittedV1, **fields: Any) -> ResponseCompletedV1:
    """A completed response to `request`; `fields` override (status, text, reason, ...)."""
    data: dict[str, Any] = {
        "request_id": request.request_id,
        "tenant": request.tenant,
        "status": "completed",
        "text": f"answer to {request.messages[-1].content if request.messages else request.prompt}",
        "model": "cairn-qa",
        "model_version": "2",
        "usage": TokenUsage(input_tokens=11, output_tokens=7),
        "prompt_name": request.prompt.split("@")[0].split(":")[0],
        "prompt_version": 1,
        "completed_at": NOW,
    }
    data.update(fields)
    return ResponseCompletedV1.model_validate(data)


class AnsweringPublisher(InMemoryPublisher):
    """Publishes in memory and, like the request path, answers each request into `book` soon after.

    `respond(request)` makes the response (None: no answer, for timeouts); a request that streams
    first gets the deltas `stream(request)` makes (default: its generated text in deltas).
    """

    def __init__(
        self,
        book: ReplyBook,
        respond: Callable[[RequestSubmittedV1], ResponseCompletedV1 | None] = answer,
        stream: Callable[[RequestSubmittedV1], list[CompletionDeltaGeneratedV1]] | None = None,
    ) -> None:
        super().__init__("/cairn/gateway", allowed_types=router.published_types)
        self.book, self.respond = book, respond
        self._tasks: set[asyncio.Future[None]] = set()
        self.stream = stream or (lambda request: deltas_of(request, answer(request).text or ""))

    async def send(self, message: OutgoingMessage) -> None:
        await super().send(message)
        event = message.event
        if isinstance(event, RequestSubmittedV1):
            response = self.respond(event)
            deltas = self.stream(event) if event.params.stream else []
            task = asyncio.ensure_future(self._answer(deltas, response))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, deltas: list[CompletionDeltaGeneratedV1], response: ResponseCompletedV1 | None
    ) -> None:
        await asyncio.sleep(0)
        for delta in deltas:
            self.book.deliver_delta(delta)
            await asyncio.sleep(0)
        if response is not None:
            await self.book.deliver(response)

    def requests(self) -> list[RequestSubmittedV1]:
        return [e for e in self.events(RequestSubmittedV1.event_type) if isinstance(e, RequestSubmittedV1)]
