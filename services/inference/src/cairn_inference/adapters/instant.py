"""The instant backend: a measurement instrument that answers at once with a fixed completion.

It exists so the benchmarks can measure what the platform itself costs (bus hops, screening,
retrieval, storage) without a model in the way. It never generates: every answer is the same
text, cut to `max_tokens` words, with token usage estimated from the prompt's length so that
telemetry and the audit trail carry plausible figures. It is selectable only in benchmark mode
(`CAIRN_INFERENCE_BACKEND=instant` with `CAIRN_BENCHMARK_MODE=1`); `open_backend` refuses it
otherwise, so it cannot answer real requests by accident.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cairn_events import ChatMessage, GenerationParams, TokenUsage
from cairn_inference.domain.chat import render_chatml
from cairn_inference.domain.completion import BackendUnavailableError, Completion, FinishReason

__all__ = ["INSTANT_COMPLETION", "InstantBackend", "estimate_tokens"]

INSTANT_COMPLETION = (
    "This is a fixed answer from the instant benchmark backend; it measures the pipeline, not a model [1]."
)


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token, as for English BPE vocabularies); at least 1."""
    return max(1, (len(text) + 3) // 4)


class InstantBackend:
    """A `ModelBackend` that returns `INSTANT_COMPLETION` at zero cost (benchmarks only)."""

    name = "instant"

    def __init__(self, text: str = INSTANT_COMPLETION) -> None:
        self.text = text
        self._closed = False

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        model: str,
        adapter: str | None = None,
    ) -> Completion:
        """The fixed completion, cut to `params.max_tokens` words (finish reason `length` when cut)."""
        if self._closed:
            raise BackendUnavailableError("the instant backend is closed")
        started = time.perf_counter()
        words = self.text.split()
        cut = words[: params.max_tokens]
        finish = FinishReason.LENGTH if len(cut) < len(words) else FinishReason.STOP
        text = " ".join(cut)
        usage = TokenUsage(
            input_tokens=estimate_tokens(render_chatml(messages)), output_tokens=estimate_tokens(text)
        )
        latency = (time.perf_counter() - started) * 1000
        return Completion(
            text=text,
            finish_reason=finish,
            usage=usage,
            latency_ms=latency,
            ttft_ms=latency,
            backend=self.name,
            model=model,
            adapter=adapter,
        )

    async def aclose(self) -> None:
        """Later calls fail with BackendUnavailableError."""
        self._closed = True
