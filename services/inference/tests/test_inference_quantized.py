"""Quantized serving: the int8 copy of the tiny model, beside its float32 original, chosen per registry version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cairn_bus import InMemoryInbox, InMemoryPublisher
from cairn_events import GenerationParams, ModelPromotedV1, ModelRegisteredV1, Quantization, ResponseStatus
from cairn_events.common import ModelStage
from cairn_inference.adapters.transformers_cpu import TransformersBackend
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.domain.completion import ModelError
from cairn_inference.domain.references import resolve
from cairn_inference.domain.registry import RegistryView
from cairn_inference.ports import ModelBackend
from cairn_testing.tiny import TINY_MODEL_NAME

from .conftest import FakeBackend, screened
from .test_inference_handlers import Harness, settings
from .test_inference_transformers import QUESTIONS, chat


@pytest.fixture
async def float32(tiny_model_dir: Path) -> AsyncIterator[TransformersBackend]:
    loaded = TransformersBackend.load(tiny_model_dir, model_name=TINY_MODEL_NAME, batch_window_s=0.05)
    yield loaded
    await loaded.aclose()


def _int8_linear_layers(model: object) -> int:
    import torch

    modules = model.modules()  # type: ignore[attr-defined]
    return sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in modules)


def _float_linear_layers(model: object) -> int:
    import torch

    return sum(type(m) is torch.nn.Linear for m in model.modules())  # type: ignore[attr-defined]


async def test_a_quantized_copy_serves_int8_weights_and_leaves_the_original_float32(
    float32: TransformersBackend,
) -> None:
    params = GenerationParams(max_tokens=8)
    before = await float32.generate(chat("hi"), params, model=TINY_MODEL_NAME)
    int8 = await asyncio.to_thread(float32.quantized, "int8")
    try:
        assert int8.name == "transformers-cpu-int8"
        assert int8.quantization == "int8"
        assert _int8_linear_layers(int8.model) > 0
        assert _float_linear_layers(int8.model) == 0
        assert _int8_linear_layers(float32.model) == 0
        answer = await int8.generate(chat("hi"), params, model=TINY_MODEL_NAME)
        assert answer.backend == "transformers-cpu-int8"
        assert answer.usage.output_tokens > 0
        assert answer.usage.input_tokens == before.usage.input_tokens
        after = await float32.generate(chat("hi"), params, model=TINY_MODEL_NAME)
        assert (after.text, after.backend) == (before.text, "transformers-cpu")
    finally:
        await int8.aclose()


async def test_a_quantized_backend_batches_like_the_original(float32: TransformersBackend) -> None:
    int8 = await asyncio.to_thread(float32.quantized, "int8")
    try:
        params = GenerationParams(max_tokens=6)
        got = await asyncio.gather(
            *(int8.generate(chat(q), params, model=TINY_MODEL_NAME) for q in QUESTIONS)
        )
        assert list(int8.batcher.batch_sizes) == [len(QUESTIONS)]
        assert all(c.backend == "transformers-cpu-int8" for c in got)
    finally:
        await int8.aclose()


async def test_loading_quantized_from_the_folder(tiny_model_dir: Path) -> None:
    int8 = TransformersBackend.load(tiny_model_dir, model_name=TINY_MODEL_NAME, quantization="int8")
    try:
        assert _int8_linear_layers(int8.model) > 0
        answer = await int8.generate(chat("hi"), GenerationParams(max_tokens=4), model=TINY_MODEL_NAME)
        assert answer.backend == "transformers-cpu-int8"
    finally:
        await int8.aclose()


async def test_an_unknown_quantization_or_an_adapter_on_int8_is_refused(
    float32: TransformersBackend, tiny_model_dir: Path
) -> None:
    with pytest.raises(ModelError, match="quantization 'int4' is not served here; known: int8"):
        TransformersBackend.load(tiny_model_dir, model_name=TINY_MODEL_NAME, quantization="int4")
    int8 = await asyncio.to_thread(float32.quantized, "int8")
    try:
        with pytest.raises(ModelError, match="LoRA adapters are served at full precision only"):
            await int8.load_adapter("cairn-qa:2", str(tiny_model_dir))
        assert int8.adapters == {}
    finally:
        await int8.aclose()


# --- the handler: a registry version's quantization picks its backend --------------------------------


def _registered(version: int, quantization: Quantization | None) -> ModelRegisteredV1:
    return ModelRegisteredV1(
        model_name="cairn-qa",
        version=version,
        base_model="SmolLM2-135M-Instruct",
        config={},
        metrics={},
        code_version="test",
        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
        quantization=quantization,
    )


def _view() -> RegistryView:
    view = RegistryView()
    view.apply_registered(_registered(1, None), "r1")
    view.apply_registered(_registered(2, Quantization.INT8), "r2")
    return view


def test_the_registry_view_records_each_versions_quantization() -> None:
    view = _view()
    assert [(v.version, v.quantization) for v in view.versions("cairn-qa")] == [(1, None), (2, "int8")]
    view.apply_promoted(
        ModelPromotedV1(
            model_name="cairn-qa",
            version=2,
            to_stage=ModelStage.PRODUCTION,
            promoted_by="test",
            reason="test",
            promoted_at=datetime(2026, 1, 2, tzinfo=UTC),
        ),
        "p2",
    )
    served = resolve(None, view, served_model="cairn-qa", base_model="SmolLM2-135M-Instruct")
    assert (served.version, served.quantization) == (2, "int8")


@asynccontextmanager
async def _harness(full: FakeBackend, quantized: dict[str, ModelBackend]) -> AsyncIterator[Harness]:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    async with build(
        settings(), publisher, backend=full, inbox=InMemoryInbox(), registry=_view(), quantized=quantized
    ) as deps:
        yield Harness(deps, InMemoryPublisher("/cairn/safety"))


async def test_each_version_is_answered_by_the_backend_of_its_quantization() -> None:
    full, int8 = FakeBackend("full precision"), FakeBackend("eight bits")
    int8.name = "fake-int8"
    async with _harness(full, {"int8": int8}) as harness:
        await harness.deliver(harness.message(screened(model="cairn-qa:2")))
        await harness.deliver(harness.message(screened(model="cairn-qa:1")))
        assert (len(full.calls), len(int8.calls)) == (1, 1)
        by_version = {c.model_version: (c.text, c.backend) for c in harness.completions()}
    assert by_version == {"2": ("eight bits", "fake-int8"), "1": ("full precision", "fake")}


async def test_a_version_whose_quantization_is_not_loaded_fails_saying_how_to_load_it() -> None:
    full = FakeBackend()
    async with _harness(full, {}) as harness:
        await harness.deliver(harness.message(screened(model="cairn-qa:2")))
        (response,) = harness.responses()
    assert full.calls == []
    assert response.status is ResponseStatus.FAILED
    assert response.reason is not None
    assert "cairn-qa:2 is served int8" in response.reason
    assert "CAIRN_QUANTIZED_BACKENDS" in response.reason
