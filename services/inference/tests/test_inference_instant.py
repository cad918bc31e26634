"""The instant backend: a fixed answer at zero cost for benchmarks, refused outside benchmark mode."""

from __future__ import annotations

import pytest

from cairn_bus import InMemoryInbox, InMemoryPublisher
from cairn_events import ChatMessage, CompletionGeneratedV1, GenerationParams
from cairn_inference.adapters.instant import INSTANT_COMPLETION, InstantBackend, estimate_tokens
from cairn_inference.app import router
from cairn_inference.bootstrap import build, open_backend
from cairn_inference.domain.completion import BackendUnavailableError
from cairn_inference.domain.registry import RegistryView
from cairn_inference.settings import Settings

from .conftest import screened
from .test_inference_handlers import Harness

MESSAGES = [
    ChatMessage(role="system", content="Answer from the passages."),
    ChatMessage(role="user", content="What does the yield statement do? " * 10),
]


async def test_it_answers_the_fixed_text_with_usage_estimated_from_the_prompt() -> None:
    backend = InstantBackend()
    completion = await backend.generate(MESSAGES, GenerationParams(max_tokens=256), model="m")
    assert completion.text == INSTANT_COMPLETION
    assert completion.finish_reason == "stop"
    assert completion.backend == "instant"
    assert completion.model == "m"
    assert completion.usage.input_tokens > 80  # the user turn alone is ~340 characters
    assert completion.usage.output_tokens == estimate_tokens(INSTANT_COMPLETION)
    assert completion.latency_ms < 1000


async def test_max_tokens_cuts_the_answer_with_finish_reason_length() -> None:
    completion = await InstantBackend().generate(MESSAGES, GenerationParams(max_tokens=3), model="m")
    assert completion.text == " ".join(INSTANT_COMPLETION.split()[:3])
    assert completion.finish_reason == "length"


async def test_a_closed_backend_is_unavailable() -> None:
    backend = InstantBackend()
    await backend.aclose()
    with pytest.raises(BackendUnavailableError):
        await backend.generate(MESSAGES, GenerationParams(), model="m")


async def test_it_is_refused_outside_benchmark_mode() -> None:
    with pytest.raises(ValueError, match="CAIRN_BENCHMARK_MODE=1"):
        await open_backend(Settings(inference_backend="instant"))


async def test_benchmark_mode_selects_it_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_INFERENCE_BACKEND", "instant")
    monkeypatch.setenv("CAIRN_BENCHMARK_MODE", "1")
    backend = await open_backend(Settings())
    assert isinstance(backend, InstantBackend)


async def test_the_service_answers_through_it() -> None:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    async with build(
        Settings(),
        publisher,
        backend=InstantBackend(),
        inbox=InMemoryInbox(),
        registry=RegistryView(),
    ) as deps:
        harness = Harness(deps, InMemoryPublisher("/cairn/safety"))
        await harness.deliver(harness.message(screened(request_id="r-instant", model=None)))
        done = harness.completions()
    assert len(done) == 1
    assert isinstance(done[0], CompletionGeneratedV1)
    assert done[0].request_id == "r-instant"
    assert done[0].text.startswith("This is a fixed answer")
