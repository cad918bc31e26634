"""The semantic cache's question embedder: all-MiniLM-L6-v2 on CPU (`cairn_embedding`), off the event loop."""

from __future__ import annotations

import asyncio

from cairn_embedding.minilm import MiniLMEmbedder

__all__ = ["MiniLMQuestionEmbedder"]


class MiniLMQuestionEmbedder:
    """`QuestionEmbedder` on the packaged all-MiniLM-L6-v2, loaded when built (a few seconds; blocking).

    An embedding runs in a worker thread (a short question takes milliseconds on one core); calls are
    serialised by the model."""

    def __init__(self, model: MiniLMEmbedder | None = None) -> None:
        self._model = model if model is not None else MiniLMEmbedder(eager=True)
        self.name = self._model.name

    async def embed(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._model.embed_query, text)
