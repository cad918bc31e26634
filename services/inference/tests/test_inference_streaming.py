"""Streaming requests: the deltas a generation yields (chunker rules, the handler's events, the
transformers backend's progress reports)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from cairn_bus import InMemoryInbox, InMemoryPublisher, Outcome, derive_event_id
from cairn_events import (
    ChatMessage,
    CompletionDeltaGeneratedV1,
    CompletionGeneratedV1,
    GenerationParams,
)
from cairn_inference.adapters.transformers_cpu import TransformersBackend
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.domain.completion import Completion
from cairn_inference.domain.deltas import DeltaChunker, current_progress, reporting_to
from cairn_inference.domain.registry import RegistryView
from cairn_testing.tiny import TINY_MODEL_NAME

from .conftest import FakeBackend, screened
from .test_inference_handlers import Harness, settings

# --- the chunker ---------------------------------------------------------------------------------


def test_deltas_are_batched_by_tokens_or_time() -> None:
    chunker = DeltaChunker(every_tokens=3, every_s=10.0)
    assert chunker.offer("Hel", 1, 0.0) is None
    assert chunker.offer("Hello", 2, 0.1) is None
    assert chunker.offer("Hello wor", 3, 0.2) == "Hello wor"
    assert chunker.offer("Hello world", 4, 10.3) == "ld"  # 10 s since the last delta
    assert chunker.index == 2
    assert chunker.finish("Hello world!") == (11, "!")


def test_a_half_character_and_a_possible_stop_string_wait_for_the_next_delta() -> None:
    chunker = DeltaChunker(stops=["\nUser:"], every_tokens=1)
    assert chunker.offer("Caf\ufffd", 1, 0.0) == "C"  # "af" may begin "\nUser:" (5 characters held)
    assert chunker.offer("Café au lait\nUs", 2, 0.0) == "afé au la"
    assert chunker.offer("Café au lait\nUser: more", 3, 0.0) == "it"  # cut at the stop string
    assert chunker.finish("Café au lait") == (12, "")


def test_the_last_delta_restarts_when_the_final_text_does_not_continue_the_sent_one() -> None:
    chunker = DeltaChunker(every_tokens=1)
    assert chunker.offer("Hello", 1, 0.0) == "Hello"
    assert chunker.finish("Goodbye") == (0, "Goodbye")


def test_the_progress_callback_is_only_set_within_its_block() -> None:
    def progress(text: str, tokens: int) -> None: ...

    assert current_progress() is None
    with reporting_to(progress):
        assert current_progress() is progress
    assert current_progress() is None


# --- the handler ---------------------------------------------------------------------------------


class StreamingFake(FakeBackend):
    """A fake backend that reports its text word by word while it 'generates'."""

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        model: str,
        adapter: str | None = None,
    ) -> Completion:
        progress = current_progress()
        if progress is not None:
            words = self.text.split(" ")
            for n in range(1, len(words) + 1):
                progress(" ".join(words[:n]), n)
        return await super().generate(messages, params, model=model, adapter=adapter)


@pytest.fixture
async def streaming() -> AsyncIterator[Harness]:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    backend = StreamingFake("one two three four five six seven")
    async with build(
        settings(stream_delta_tokens=2, stream_delta_ms=60_000),
        publisher,
        backend=backend,
        inbox=InMemoryInbox(),
        registry=RegistryView(),
    ) as deps:
        yield Harness(deps, InMemoryPublisher("/cairn/safety"))


def deltas(harness: Harness) -> list[CompletionDeltaGeneratedV1]:
    return [
        e
        for e in harness.published.events(CompletionDeltaGeneratedV1.event_type)
        if isinstance(e, CompletionDeltaGeneratedV1)
    ]


async def test_a_streaming_request_publishes_its_text_in_deltas_before_the_completion(
    streaming: Harness,
) -> None:
    event = screened(model=None, params={"max_tokens": 32, "stream": True})
    message = streaming.message(event)
    assert await streaming.deliver(message) is Outcome.HANDLED
    got = deltas(streaming)
    assert [d.text for d in got] == ["one two", " three four", " five six", " seven"]
    assert [d.index for d in got] == [0, 1, 2, 3]
    assert [d.offset for d in got] == [0, 7, 18, 27]
    assert [d.last for d in got] == [False, False, False, True]
    assert got[-1].finish_reason == "stop"
    assert got[-1].output_tokens == 7
    assert all(d.request_id == event.request_id and d.tenant == event.tenant for d in got)
    (completion,) = streaming.completions()
    assert "".join(d.text for d in got) == completion.text
    types = [m.event.event_type for m in streaming.published.messages]
    assert types[-1] == CompletionGeneratedV1.event_type  # every delta goes out before the completion
    ids = [m.meta.id for m in streaming.published.messages[:-1]]
    assert ids == [
        derive_event_id(message.meta.id, CompletionDeltaGeneratedV1.event_type, f"delta-{i}")
        for i in range(4)
    ]


async def test_a_request_that_does_not_stream_publishes_no_delta(streaming: Harness) -> None:
    await streaming.deliver(streaming.message(screened(model=None)))
    assert deltas(streaming) == []
    assert len(streaming.completions()) == 1


async def test_a_backend_that_cannot_stream_sends_the_whole_text_in_one_delta() -> None:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    async with build(
        settings(), publisher, backend=FakeBackend(), inbox=InMemoryInbox(), registry=RegistryView()
    ) as deps:
        harness = Harness(deps, InMemoryPublisher("/cairn/safety"))
        await harness.deliver(harness.message(screened(model=None, params={"stream": True})))
        [only] = deltas(harness)
    assert (only.index, only.offset, only.last, only.text) == (0, 0, True, "Refunds take 5 business days.")


async def test_a_replayed_request_does_not_stream(streaming: Harness) -> None:
    message = streaming.upstream.build(
        screened(model=None, params={"stream": True}), replay_id="replay-1", replay_of="evt-1"
    )
    await streaming.deliver(message)
    assert deltas(streaming) == []
    assert len(streaming.completions()) == 1


# --- the transformers backend --------------------------------------------------------------------


@pytest.fixture
async def tiny(tiny_model_dir: Path) -> AsyncIterator[TransformersBackend]:
    backend = TransformersBackend.load(tiny_model_dir, model_name=TINY_MODEL_NAME, batching=False)
    yield backend
    await backend.aclose()


async def test_the_transformers_backend_reports_a_growing_text_that_its_completion_continues(
    tiny: TransformersBackend,
) -> None:
    reports: list[tuple[str, int]] = []
    params = GenerationParams(max_tokens=12)
    messages = [ChatMessage(role="user", content="Say something.")]
    with reporting_to(lambda text, tokens: reports.append((text, tokens))):
        completion = await tiny.generate(messages, params, model=TINY_MODEL_NAME)
    silent = await tiny.generate(messages, params, model=TINY_MODEL_NAME)
    assert completion.text == silent.text  # reporting changes nothing
    assert reports, "a streaming generation reports its progress"
    assert [tokens for _, tokens in reports] == list(range(1, len(reports) + 1))
    chunker = DeltaChunker(every_tokens=1)
    sent = "".join(piece for text, tokens in reports if (piece := chunker.offer(text, tokens, 0.0)))
    assert completion.text.startswith(sent)
