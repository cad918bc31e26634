"""The closed loop's end at inference: promotions load LoRA adapters from S3 into the tiny model, and
requests are served (and named) by the registry version their model reference resolves to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cairn_bus import InMemoryInbox, InMemoryPublisher, Outcome
from cairn_bus.objects import InMemoryObjectStore, upload_folder
from cairn_events import GenerationParams, ModelPromotedV1, ModelRegisteredV1, ResponseStatus
from cairn_inference.adapters.adapter_files import S3AdapterFiles
from cairn_inference.adapters.transformers_cpu import TransformersBackend
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.domain.registry import RegistryView
from cairn_inference.handlers import on_input_screened
from cairn_inference.settings import Settings
from cairn_testing.tiny import TINY_MODEL_NAME

from .conftest import screened
from .test_inference_handlers import Harness
from .test_inference_registry import promoted, registered

PARAMS = {"max_tokens": 12, "temperature": 0.0}


def make_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter for the tiny Llama with random (not zero) B matrices, so it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def adapter_store(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> InMemoryObjectStore:
    """s3://cairn/adapters/job-2/ and job-3/: two different adapters of the tiny model."""
    store = InMemoryObjectStore()
    folder = tmp_path_factory.mktemp("adapters")
    for version in (2, 3):
        upload_folder(
            store,
            make_adapter(tiny_model_dir, folder / f"job-{version}", seed=version),
            f"s3://cairn/adapters/job-{version}/",
        )
    return store


class CountingFiles(S3AdapterFiles):
    """Counts fetches, so a test sees that concurrent requests download once."""

    fetched: list[str]

    async def fetch(self, name: str, uri: str) -> str:
        self.fetched.append(name)
        await asyncio.sleep(0.05)  # let a concurrent request arrive while this one downloads
        return await super().fetch(name, uri)


@pytest.fixture
async def backend(tiny_model_dir: Path) -> AsyncIterator[TransformersBackend]:
    """A fresh tiny model per test: PEFT wraps the model it loads adapters into."""
    loaded = await asyncio.to_thread(
        TransformersBackend.load, tiny_model_dir, model_name=TINY_MODEL_NAME, batching=False
    )
    yield loaded
    await loaded.aclose()


def make_files(store: InMemoryObjectStore, cache: Path) -> CountingFiles:
    files = CountingFiles(store, cache)
    files.fetched = []
    return files


@pytest.fixture
async def harness(
    backend: TransformersBackend, adapter_store: InMemoryObjectStore, tmp_path: Path
) -> AsyncIterator[Harness]:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    settings = Settings(model_name=TINY_MODEL_NAME, generation_timeout_s=60)
    files = make_files(adapter_store, tmp_path / "cache")
    async with build(
        settings,
        publisher,
        backend=backend,
        inbox=InMemoryInbox(),
        registry=RegistryView(),
        adapter_files=files,
    ) as deps:
        yield Harness(deps, InMemoryPublisher("/cairn/evaluator"))


async def deliver(harness: Harness, *events: ModelRegisteredV1 | ModelPromotedV1) -> None:
    for event in events:
        assert await harness.deliver(harness.message(event)) is Outcome.HANDLED


async def ask(harness: Harness, model: str | None, request_id: str = "req-1") -> None:
    event = screened(model=model, request_id=request_id, params=PARAMS)
    assert await harness.deliver(harness.message(event)) is Outcome.HANDLED


async def direct(backend: TransformersBackend, adapter: str | None) -> str:
    event = screened(params=PARAMS)
    completion = await backend.generate(
        event.messages, GenerationParams(**PARAMS), model=TINY_MODEL_NAME, adapter=adapter
    )
    return completion.text


def fetched(harness: Harness) -> list[str]:
    files = harness.deps.served.files
    assert isinstance(files, CountingFiles)
    return files.fetched


async def test_a_promotion_to_production_loads_the_adapter_and_serves_requests_naming_no_model(
    harness: Harness, backend: TransformersBackend
) -> None:
    await deliver(harness, registered(2))
    assert backend.adapters == {}  # registered only: nothing loaded yet
    await deliver(harness, promoted(2, "production"))
    assert set(backend.adapters) == {"cairn-qa:2"}  # loaded on promotion, before any request
    await ask(harness, None)
    (completion,) = harness.completions()
    assert (completion.model, completion.model_version, completion.adapter) == ("cairn-qa", "2", "cairn-qa:2")
    with_adapter, base = await direct(backend, "cairn-qa:2"), await direct(backend, None)
    assert completion.text == with_adapter
    assert with_adapter != base  # the adapter is active
    assert fetched(harness) == ["cairn-qa:2"]


async def test_the_base_model_still_answers_by_name_next_to_adapters(harness: Harness) -> None:
    await deliver(harness, registered(2), promoted(2, "production"))
    await ask(harness, TINY_MODEL_NAME)
    (completion,) = harness.completions()
    assert (completion.model, completion.model_version, completion.adapter) == (TINY_MODEL_NAME, None, None)


async def test_an_explicit_version_is_loaded_on_first_use_once_for_concurrent_requests(
    harness: Harness, backend: TransformersBackend
) -> None:
    await deliver(harness, registered(2), registered(3), promoted(2, "production"))
    assert "cairn-qa:3" not in backend.adapters
    events = [screened(model="cairn-qa:3", request_id=f"eval-{i}", params=PARAMS) for i in range(3)]
    messages = [harness.message(e) for e in events]
    await asyncio.gather(
        *(on_input_screened(e, m.meta, harness.deps) for e, m in zip(events, messages, strict=True))
    )
    completions = harness.completions()
    assert len(completions) == 3
    assert {(c.model, c.model_version, c.adapter) for c in completions} == {("cairn-qa", "3", "cairn-qa:3")}
    assert fetched(harness).count("cairn-qa:3") == 1
    assert {"cairn-qa:2", "cairn-qa:3"} <= set(backend.adapters)
    assert completions[0].text == await direct(backend, "cairn-qa:3")


async def test_rollback_switches_the_served_adapter_and_unloads_the_archived_one(
    harness: Harness, backend: TransformersBackend
) -> None:
    await deliver(harness, registered(2), registered(3), promoted(2, "production"), promoted(3, "production"))
    assert set(backend.adapters) == {"cairn-qa:3"}  # v2 archived by v3's promotion: unloaded
    await ask(harness, None, "req-a")
    await deliver(harness, promoted(2, "production"))  # rollback
    assert set(backend.adapters) == {"cairn-qa:2"}
    await ask(harness, None, "req-b")
    first, second = harness.completions()
    assert (first.adapter, first.model_version) == ("cairn-qa:3", "3")
    assert (second.adapter, second.model_version) == ("cairn-qa:2", "2")
    assert first.text != second.text


async def test_an_archived_version_named_explicitly_is_loaded_again(
    harness: Harness, backend: TransformersBackend
) -> None:
    await deliver(harness, registered(3), promoted(3, "staging"), promoted(3, "archived"))
    assert "cairn-qa:3" not in backend.adapters
    await ask(harness, "cairn-qa:3")
    assert harness.completions()[0].adapter == "cairn-qa:3"
    assert "cairn-qa:3" in backend.adapters


async def test_an_adapter_missing_in_s3_fails_the_request_with_the_reason(harness: Harness) -> None:
    missing = registered(5).model_copy(update={"adapter_uri": "s3://cairn/adapters/nope/"})
    await deliver(harness, missing)
    await deliver(
        harness, promoted(5, "production").model_copy(update={"adapter_uri": "s3://cairn/adapters/nope/"})
    )
    await ask(harness, None)
    assert harness.completions() == []
    (response,) = harness.responses()
    assert response.status is ResponseStatus.FAILED
    assert response.reason is not None
    assert "cairn-qa:5" in response.reason
    assert "no files at s3://cairn/adapters/nope/" in response.reason
    assert (response.model, response.model_version, response.adapter) == ("cairn-qa", "5", "cairn-qa:5")


async def test_an_adapter_the_backend_lost_is_loaded_again(
    harness: Harness, backend: TransformersBackend
) -> None:
    await deliver(harness, registered(2), promoted(2, "production"))
    await backend.unload_adapter("cairn-qa:2")  # as after an SGLang restart
    await ask(harness, None)
    assert harness.completions()[0].adapter == "cairn-qa:2"
    assert fetched(harness) == ["cairn-qa:2", "cairn-qa:2"]


async def test_the_canary_sends_its_share_to_the_staging_adapter(
    backend: TransformersBackend, adapter_store: InMemoryObjectStore, tmp_path: Path
) -> None:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    settings = Settings(model_name=TINY_MODEL_NAME, canary_share=0.5, generation_timeout_s=60)
    view = RegistryView()
    view.apply_registered(registered(2))
    view.apply_registered(registered(3))
    view.apply_promoted(promoted(2, "production"))
    view.apply_promoted(promoted(3, "staging"))
    files = make_files(adapter_store, tmp_path / "cache")
    async with build(
        settings, publisher, backend=backend, inbox=InMemoryInbox(), registry=view, adapter_files=files
    ) as deps:
        assert set(backend.adapters) == {"cairn-qa:2", "cairn-qa:3"}  # loaded at start, before requests
        harness = Harness(deps, InMemoryPublisher("/cairn/safety"))
        for i in range(16):
            await ask(harness, None, f"req-{i}")
    served = {c.request_id: c.adapter for c in harness.completions()}
    assert set(served.values()) == {"cairn-qa:2", "cairn-qa:3"}
    from cairn_inference.domain.references import canary_bucket

    assert all((served[r] == "cairn-qa:3") == (canary_bucket(r) < 0.5) for r in served)
