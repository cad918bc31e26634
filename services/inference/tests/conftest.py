"""Fixtures of the inference tests: one thread for torch, the tiny chat model, fake backends."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from cairn_events import ChatMessage, GenerationParams, InputScreenedV1, TokenUsage
from cairn_inference.adapters.conversion import MANIFEST, default_model_dir
from cairn_inference.domain.completion import Completion
from cairn_testing import schema_examples

REAL_MODEL_DIR = default_model_dir("SmolLM2-135M-Instruct")


def real_model_available() -> bool:
    """Real SmolLM2 tests run when the converted model is there or CAIRN_REAL_MODEL_TESTS=1 asks for them."""
    return os.environ.get("CAIRN_REAL_MODEL_TESTS") == "1" or (REAL_MODEL_DIR / MANIFEST).is_file()


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """torch with several threads collapses under load on these machines; tests use one."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny chat model, built once per session."""
    from cairn_testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def screened(**changes: object) -> InputScreenedV1:
    """The schema example of an allowed input, with `changes` applied."""
    example = schema_examples(InputScreenedV1.event_type)[0].payload
    return InputScreenedV1.model_validate({**example, **changes})


class FakeBackend:
    """A ModelBackend that answers from a script, records calls, and can fail or stall."""

    name = "fake"

    def __init__(
        self, text: str = "Refunds take 5 business days.", *, error: Exception | None = None, delay: float = 0
    ) -> None:
        self.text = text
        self.error = error
        self.delay = delay
        self.calls: list[tuple[list[ChatMessage], GenerationParams, str, str | None]] = []
        self.cancelled = 0
        self.closed = False

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        model: str,
        adapter: str | None = None,
    ) -> Completion:
        self.calls.append((list(messages), params, model, adapter))
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return Completion(
            text=self.text,
            finish_reason="stop",
            usage=TokenUsage(input_tokens=42, output_tokens=7),
            latency_ms=12.5,
            ttft_ms=3.25,
            backend=self.name,
            model=model,
            model_version="3",
            adapter=adapter,
        )

    async def aclose(self) -> None:
        self.closed = True
