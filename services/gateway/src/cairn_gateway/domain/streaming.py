"""Streaming in OpenAI's shape: server-sent events of `chat.completion.chunk` objects, and the
hold-back window that decides how much of a not-yet-screened answer a client may see.

The deltas of an answer arrive before output screening has judged it. `HoldBack` releases the
received text except its last `window` characters; the final `cairn.response.completed.v1` then
decides the end: a completed answer that continues the released text sends the rest; a blocked
one ends with `finish_reason: "content_filter"` and a refusal; a completed answer that does not
continue what was released (output screening redacted or replaced text already shown) ends with an
`answer_replaced` error event. A `window` of None releases nothing before the verdict (the answer
is streamed only once screened). What a client may have seen of an answer that is then blocked is
bounded by its length minus the window (docs/gateway.md, "Streaming").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cairn_events import CompletionDeltaGeneratedV1

__all__ = ["DONE", "ChunkMaker", "HoldBack", "replay_chunks", "sse"]

DONE = b"data: [DONE]\n\n"
"""The last event of a stream that ended with an answer (OpenAI's sentinel)."""


def sse(data: dict[str, Any]) -> bytes:
    """One server-sent event carrying `data` as compact JSON."""
    return b"data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


@dataclass(frozen=True)
class ChunkMaker:
    """The `chat.completion.chunk` objects of one stream (they share id, created and model)."""

    id: str
    created: int
    model: str
    include_usage: bool = False
    """`stream_options.include_usage`: every chunk carries `usage: null`, and a last chunk without
    choices carries the usage."""

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
        """A chunk with one choice whose delta is `delta`."""
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            body["usage"] = None
        body.update(extra)
        return body

    def role(self) -> dict[str, Any]:
        """The first chunk: the assistant's turn begins."""
        return self.chunk({"role": "assistant", "content": ""})

    def content(self, text: str) -> dict[str, Any]:
        """A chunk of answer text."""
        return self.chunk({"content": text})

    def refusal(self, reason: str) -> dict[str, Any]:
        """A chunk saying why the answer was refused (a blocked answer)."""
        return self.chunk({"refusal": reason})

    def finish(self, finish_reason: str, cairn: dict[str, Any]) -> dict[str, Any]:
        """The last chunk with a choice: its finish reason, and Cairn's details under `cairn`."""
        return self.chunk({}, finish_reason, cairn=cairn)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        """The usage chunk (only sent when `include_usage`)."""
        body = self.chunk({})
        body["choices"] = []
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return body


@dataclass
class HoldBack:
    """The text of one answer as its deltas arrive, and how much of it may be released."""

    window: int | None
    """Characters kept unsent until the verdict; None: everything is kept until the verdict."""
    received: str = ""
    released: int = 0
    """How many characters of `received` have been released to the client."""
    gap: bool = field(default=False)
    """A delta went missing (an offset past the received text): nothing more is appended or
    released until the verdict."""

    def add(self, delta: CompletionDeltaGeneratedV1) -> str:
        """Take in `delta`; the text that may be released now (possibly empty). A repeated delta
        (an offset already received) is skipped; a delta after a gap stops the release."""
        if self.gap or delta.offset < len(self.received):
            return ""
        if delta.offset > len(self.received):
            self.gap = True
            return ""
        self.received += delta.text
        return self.release()

    def release(self) -> str:
        """The text now releasable: everything received but the last `window` characters."""
        if self.window is None or self.gap:
            return ""
        upto = max(self.released, len(self.received) - self.window)
        text = self.received[self.released : upto]
        self.released = upto
        return text

    def rest(self, final_text: str) -> str | None:
        """What the client still gets of a completed answer `final_text`: the part after what was
        released; None when the final text does not continue the released text."""
        shown = self.received[: self.released]
        if not final_text.startswith(shown):
            return None
        return final_text[len(shown) :]

    @property
    def shown(self) -> int:
        """Characters released so far."""
        return self.released


def replay_chunks(body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The chunks of a stored `chat.completion` body (an Idempotency-Key retry replays it as a stream)."""
    [choice] = body["choices"]
    maker = ChunkMaker(body["id"], int(body["created"]), str(body["model"]), include_usage)
    message = choice["message"]
    chunks = [maker.role()]
    if message.get("content"):
        chunks.append(maker.content(message["content"]))
    if message.get("refusal"):
        chunks.append(maker.refusal(message["refusal"]))
    chunks.append(maker.finish(choice["finish_reason"], body.get("cairn", {})))
    if include_usage:
        usage = body.get("usage") or {}
        chunks.append(maker.usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)))
    return chunks
