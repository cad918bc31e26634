"""The in-process transformers backend on the tiny model: batching, limits, stop strings, adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cairn_events import ChatMessage, GenerationParams
from cairn_inference.adapters.transformers_cpu import TransformersBackend
from cairn_inference.domain.completion import AdapterNotFoundError, ModelError, ModelNotServedError
from cairn_inference.ports import AdapterManager, ModelBackend
from cairn_testing.tiny import TINY_MODEL_NAME

QUESTIONS = [
    "What does yield do?",
    "Paris is the capital of which country? Tell me more about it, please.",
    "hi",
    "Kafka topics carry versioned CloudEvents between services; why?",
    "The quick brown fox",
    "0123456789",
]


def chat(question: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content=question)]


@pytest.fixture
async def backend(tiny_model_dir: Path) -> AsyncIterator[TransformersBackend]:
    loaded = TransformersBackend.load(
        tiny_model_dir, model_name=TINY_MODEL_NAME, max_batch_size=8, batch_window_s=0.05
    )
    yield loaded
    await loaded.aclose()


async def test_it_is_a_model_backend_and_an_adapter_manager(backend: TransformersBackend) -> None:
    assert isinstance(backend, ModelBackend)
    assert isinstance(backend, AdapterManager)
    assert backend.name == "transformers-cpu"


async def test_concurrent_requests_are_batched_and_match_unbatched_greedy_output(
    backend: TransformersBackend, tiny_model_dir: Path
) -> None:
    params = GenerationParams(max_tokens=12)
    alone = TransformersBackend.load(tiny_model_dir, model_name=TINY_MODEL_NAME, batching=False)
    try:
        expected = [await alone.generate(chat(q), params, model=TINY_MODEL_NAME) for q in QUESTIONS]
        assert list(alone.batcher.batch_sizes) == [1] * len(QUESTIONS)
    finally:
        await alone.aclose()
    got = await asyncio.gather(*(backend.generate(chat(q), params, model=TINY_MODEL_NAME) for q in QUESTIONS))
    assert list(backend.batcher.batch_sizes) == [len(QUESTIONS)]
    assert [c.text for c in got] == [c.text for c in expected]
    assert [c.usage for c in got] == [c.usage for c in expected]
    assert [c.finish_reason for c in got] == [c.finish_reason for c in expected]
    for completion in got:
        assert completion.ttft_ms is not None
        assert 0 < completion.ttft_ms <= completion.latency_ms
        assert completion.model == TINY_MODEL_NAME
        assert completion.backend == "transformers-cpu"


async def test_each_row_keeps_its_own_max_tokens_in_a_shared_batch(backend: TransformersBackend) -> None:
    limits = [1, 3, 7, 12]
    got = await asyncio.gather(
        *(
            backend.generate(
                chat("The quick brown fox"), GenerationParams(max_tokens=n), model=TINY_MODEL_NAME
            )
            for n in limits
        )
    )
    assert list(backend.batcher.batch_sizes) == [4]
    for n, completion in zip(limits, got, strict=True):
        assert completion.usage.output_tokens <= n
        if completion.finish_reason == "length":
            assert completion.usage.output_tokens == n
    longest = got[-1]
    assert longest.finish_reason == "length", "the tiny model should not end its turn within 12 tokens here"


async def test_usage_counts_the_templated_prompt(backend: TransformersBackend) -> None:
    completion = await backend.generate(chat("hi"), GenerationParams(max_tokens=2), model=TINY_MODEL_NAME)
    assert completion.usage.input_tokens == len(backend.encode(chat("hi")))
    assert completion.usage.input_tokens > len("hi")  # the chat template's turns are counted too


async def test_a_stop_string_ends_generation_before_it(backend: TransformersBackend) -> None:
    params = GenerationParams(max_tokens=16)
    free = await backend.generate(chat("What does yield do?"), params, model=TINY_MODEL_NAME)
    assert free.finish_reason == "length"
    # a stop string from the middle of the free text, clear of undecodable bytes
    start = next(i for i in range(2, len(free.text) - 2) if "\ufffd" not in free.text[i : i + 2])
    stop = free.text[start : start + 2]
    cut = await backend.generate(
        chat("What does yield do?"), GenerationParams(max_tokens=16, stop=[stop]), model=TINY_MODEL_NAME
    )
    assert cut.finish_reason == "stop"
    assert cut.text == free.text[: free.text.index(stop)]
    assert cut.usage.output_tokens < free.usage.output_tokens


async def test_seeded_sampling_is_reproducible(backend: TransformersBackend) -> None:
    params = GenerationParams(max_tokens=10, temperature=1.0, seed=1234)
    first = await backend.generate(chat("hi"), params, model=TINY_MODEL_NAME)
    again = await backend.generate(chat("hi"), params, model=TINY_MODEL_NAME)
    other = await backend.generate(chat("hi"), params.model_copy(update={"seed": 99}), model=TINY_MODEL_NAME)
    assert first.text == again.text
    assert other.text != first.text


async def test_an_unknown_model_or_adapter_is_refused(backend: TransformersBackend) -> None:
    with pytest.raises(ModelNotServedError, match="not served"):
        await backend.generate(chat("hi"), GenerationParams(), model="gpt-5")
    with pytest.raises(AdapterNotFoundError, match="not loaded"):
        await backend.generate(chat("hi"), GenerationParams(), model=TINY_MODEL_NAME, adapter="support-v2")


async def test_a_prompt_beyond_the_context_is_a_model_error(backend: TransformersBackend) -> None:
    long = chat("hello " * 2000)
    with pytest.raises(ModelError, match="exceeds the model's context"):
        await backend.generate(long, GenerationParams(max_tokens=8), model=TINY_MODEL_NAME)


async def test_a_timed_out_request_stops_and_frees_the_worker(backend: TransformersBackend) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            backend.generate(chat("hi"), GenerationParams(max_tokens=900), model=TINY_MODEL_NAME), 0.1
        )
    done = await backend.generate(chat("hi"), GenerationParams(max_tokens=2), model=TINY_MODEL_NAME)
    assert done.usage.output_tokens <= 2
    abandoned, after = list(backend.finished)[-2:]
    assert abandoned[0] == "cancelled"
    assert abandoned[1] < 900
    assert after[0] != "cancelled"


@pytest.mark.filterwarnings("ignore::FutureWarning")
async def test_lora_adapters_load_change_the_output_and_unload(
    backend: TransformersBackend, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(str(tmp_path / "support-v2"))

    params = GenerationParams(max_tokens=10)
    plain = await backend.generate(chat("hi"), params, model=TINY_MODEL_NAME)
    await backend.load_adapter("support-v2", str(tmp_path / "support-v2"))
    assert backend.adapters == {"support-v2": str(tmp_path / "support-v2")}
    still_plain = await backend.generate(chat("hi"), params, model=TINY_MODEL_NAME)
    tuned = await backend.generate(chat("hi"), params, model=TINY_MODEL_NAME, adapter="support-v2")
    assert still_plain.text == plain.text
    assert tuned.adapter == "support-v2"
    assert tuned.text != plain.text
    await backend.unload_adapter("support-v2")
    assert (await backend.generate(chat("hi"), params, model=TINY_MODEL_NAME)).text == plain.text
    with pytest.raises(AdapterNotFoundError):
        await backend.generate(chat("hi"), params, model=TINY_MODEL_NAME, adapter="support-v2")
    with pytest.raises(ModelError, match="not found"):
        await backend.load_adapter("missing", str(tmp_path / "missing"))


async def test_a_folder_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot load the model"):
        TransformersBackend.load(tmp_path, model_name="x")
