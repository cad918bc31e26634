"""LoRA training on the tiny chat model with datasets in an in-memory object store."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from cairn_bus.objects import InMemoryObjectStore, sha256_hex
from cairn_events import ModelRegisteredV1
from cairn_events.artifacts import ADAPTER_MANIFEST, AdapterManifest
from cairn_tuner.adapters.peft_trainer import PeftTrainer
from cairn_tuner.domain.continual import ProductionVersion, plan_start
from cairn_tuner.domain.jobs import (
    Job,
    JobState,
    StepReport,
    TrainedAdapter,
    TrainingError,
    TrainingInterrupted,
)
from cairn_tuner.runner import JobRunner

from .conftest import TINY, Clock, job, lora, make_deps, progress, published, put_dataset, rows


def trainer(store: InMemoryObjectStore, models_dir: Path) -> PeftTrainer:
    return PeftTrainer(store, bucket="cairn", models_dir=models_dir, code_version="git:abc", clock=Clock())


def train(
    store: InMemoryObjectStore, models_dir: Path, the_job: Job
) -> tuple[TrainedAdapter, list[StepReport]]:
    steps: list[StepReport] = []
    adapter = trainer(store, models_dir).train(the_job, steps.append, lambda: False)
    return adapter, steps


@pytest.fixture
def store() -> InMemoryObjectStore:
    store = InMemoryObjectStore()
    put_dataset(store)
    return store


def test_loss_falls_and_the_adapter_is_stored_with_its_manifest(
    store: InMemoryObjectStore, models_dir: Path
) -> None:
    started = time.perf_counter()
    adapter, steps = train(store, models_dir, job(config=lora(max_steps=20, learning_rate=2e-2)))
    seconds = time.perf_counter() - started
    print(f"20 steps on the tiny model: {seconds:.2f} s")
    assert [s.step for s in steps] == list(range(1, 21))
    assert {s.total_steps for s in steps} == {20}
    first, last = steps[0].loss, sum(s.loss for s in steps[-3:]) / 3
    assert last < first * 0.8, [round(s.loss, 3) for s in steps]
    assert adapter.adapter_uri == "s3://cairn/adapters/job-1/"
    names = {uri.removeprefix(adapter.adapter_uri) for uri in store.list(adapter.adapter_uri)}
    assert names == {"adapter_config.json", "adapter_model.safetensors", ADAPTER_MANIFEST}
    manifest = AdapterManifest.model_validate_json(store.get(adapter.adapter_uri + ADAPTER_MANIFEST))
    assert (manifest.job_id, manifest.base_model, manifest.dataset_id, manifest.dataset_version) == (
        "job-1",
        TINY,
        "support-qa",
        1,
    )
    for name, digest in manifest.files.items():
        assert sha256_hex(store.get(adapter.adapter_uri + name)) == digest
    assert set(manifest.files) == {"adapter_config.json", "adapter_model.safetensors"}
    assert manifest.code_version == "git:abc"
    assert manifest.metrics == adapter.metrics
    assert manifest.config["rank"] == 4
    assert manifest.config["target_modules"] == "q_proj,v_proj"
    assert manifest.config["max_seq_len"] == 512
    assert manifest.config["max_steps"] == 20
    metrics = adapter.metrics
    assert metrics["steps"] == 20
    assert metrics["train_rows"] == 6
    assert metrics["heldout_rows"] == 2
    assert metrics["final_loss"] == steps[-1].loss
    assert metrics["train_loss"] == pytest.approx(sum(s.loss for s in steps[-5:]) / 5)
    assert metrics["heldout_loss"] > 0
    config = json.loads(store.get(adapter.adapter_uri + "adapter_config.json"))
    assert config["base_model_name_or_path"] == TINY
    assert config["r"] == 4


def test_the_same_seed_gives_the_same_metrics_and_a_different_seed_does_not(
    store: InMemoryObjectStore, models_dir: Path
) -> None:
    config = lora(max_steps=6, dropout=0.1, learning_rate=1e-2)
    one, _ = train(store, models_dir, job("a", config=config))
    two, _ = train(store, models_dir, job("b", config=config))
    other, _ = train(
        store, models_dir, job("c", config=lora(max_steps=6, dropout=0.1, learning_rate=1e-2, seed=1))
    )
    assert one.metrics == two.metrics
    assert one.files["adapter_model.safetensors"] == two.files["adapter_model.safetensors"]
    assert other.metrics["final_loss"] != one.metrics["final_loss"]
    assert other.files["adapter_model.safetensors"] != one.files["adapter_model.safetensors"]


def test_epochs_set_the_steps_without_max_steps(store: InMemoryObjectStore, models_dir: Path) -> None:
    _, steps = train(store, models_dir, job(config=lora(max_steps=None, epochs=2, batch_size=4)))
    assert len(steps) == 4  # 2 epochs * ceil(6 / 4)


def test_a_missing_base_model_names_the_prepare_command(store: InMemoryObjectStore, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="run `cairn inference prepare`"):
        trainer(store, tmp_path).train(job(base_model="SmolLM2-135M-Instruct"), lambda _: None, lambda: False)


def test_a_missing_dataset_is_a_training_error(models_dir: Path) -> None:
    with pytest.raises(TrainingError, match="dataset support-qa version 1 not found"):
        trainer(InMemoryObjectStore(), models_dir).train(job(), lambda _: None, lambda: False)


def test_a_bad_dataset_line_is_a_training_error(models_dir: Path) -> None:
    store = InMemoryObjectStore()
    store.put("s3://cairn/datasets/support-qa/v1/train.jsonl", b'{"row_id": "x"}\n')
    with pytest.raises(
        TrainingError, match=re.escape("line 1 of s3://cairn/datasets/support-qa/v1/train.jsonl")
    ):
        trainer(store, models_dir).train(job(), lambda _: None, lambda: False)


def test_unknown_target_modules_are_a_training_error(store: InMemoryObjectStore, models_dir: Path) -> None:
    with pytest.raises(TrainingError, match="bad LoRA configuration"):
        trainer(store, models_dir).train(
            job(config=lora(target_modules=["nope_proj"])), lambda _: None, lambda: False
        )


def test_training_stops_when_asked(store: InMemoryObjectStore, models_dir: Path) -> None:
    steps: list[StepReport] = []
    with pytest.raises(TrainingInterrupted):
        trainer(store, models_dir).train(
            job(config=lora(max_steps=50)), steps.append, lambda: len(steps) >= 2
        )
    assert len(steps) == 2
    assert store.list("s3://cairn/adapters/") == []


async def test_a_job_through_the_runner_with_the_real_trainer(
    store: InMemoryObjectStore, models_dir: Path
) -> None:
    deps = make_deps(trainer=trainer(store, models_dir))
    await deps.repo.create(job(config=lora(max_steps=5)))
    await JobRunner(deps).run_next()
    done = await deps.repo.get("job-1")
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.model_version == 1
    [event] = published(deps).events(ModelRegisteredV1.event_type)
    assert isinstance(event, ModelRegisteredV1)
    assert event.adapter_uri == "s3://cairn/adapters/job-1/"
    assert event.metrics["steps"] == 5
    assert event.config["learning_rate"] == 1e-2
    assert event.code_version == "git:abc"
    assert progress(deps)[-1].state == "succeeded"
    assert store.exists("s3://cairn/adapters/job-1/" + ADAPTER_MANIFEST)


def test_the_stored_adapter_loads_onto_the_base_model(
    store: InMemoryObjectStore, models_dir: Path, tmp_path: Path
) -> None:
    """What inference does with `adapter_uri`: download the folder, `PeftModel.from_pretrained` on the base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from cairn_bus.objects import download_prefix

    adapter, _ = train(store, models_dir, job(config=lora(max_steps=10, learning_rate=5e-2)))
    download_prefix(store, adapter.adapter_uri, tmp_path)
    base = AutoModelForCausalLM.from_pretrained(str(models_dir / TINY))
    ids = torch.tensor([[1, 5, 9, 20, 33]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, str(tmp_path))
        after = tuned(input_ids=ids).logits
    assert not torch.allclose(before, after)


def _lora_weights(model: Any) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def test_a_continual_job_trains_the_production_adapter_further_with_older_rows_mixed_in(
    store: InMemoryObjectStore, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent (trained on v1) is loaded as it was stored, not a fresh LoRA; a seeded sample of v1's train
    rows is replayed; the loss on v1's held-out split is measured before and after."""
    import torch
    from safetensors.torch import load as load_safetensors

    parent, _ = train(store, models_dir, job("parent", config=lora(max_steps=8, learning_rate=5e-2)))
    put_dataset(store, version=2, train=rows(6, start=20), heldout=rows(2, start=30))
    the_trainer = trainer(store, models_dir)
    loaded: list[dict[str, Any]] = []
    load = the_trainer._load

    def spy(folder: Path, the_job: Job, parent_folder: Path | None = None) -> tuple[Any, Any]:
        tokenizer, model = load(folder, the_job, parent_folder)
        loaded.append(_lora_weights(model))
        return tokenizer, model

    monkeypatch.setattr(the_trainer, "_load", spy)
    production = ProductionVersion("cairn-qa", 2, parent.adapter_uri)
    config = lora(max_steps=4, start_from="production", replay_fraction=0.5)
    child_job = job("child", dataset_version=2, config=config)
    start = plan_start(child_job, "cairn-qa", production)
    child = the_trainer.train(child_job, lambda _: None, lambda: False, start)

    stored = load_safetensors(store.get(parent.adapter_uri + "adapter_model.safetensors"))
    [initial] = loaded
    assert set(initial) == set(stored)
    for name, weight in stored.items():
        assert torch.equal(initial[name], weight), name
    assert any("lora_B" in name and bool(w.abs().sum() > 0) for name, w in initial.items())  # not fresh init
    final = load_safetensors(store.get(child.adapter_uri + "adapter_model.safetensors"))
    assert any(not torch.equal(final[name], stored[name]) for name in stored)  # and it trained further

    metrics = child.metrics
    assert metrics["replay_rows"] == 3  # half of v1's 6 train rows
    assert metrics["train_rows"] == 9
    assert metrics["older_heldout_rows"] == 2
    assert metrics["older_heldout_loss"] > 0
    assert metrics["parent_older_heldout_loss"] > 0
    assert metrics["heldout_loss"] > 0
    assert child.config["start_from"] == "production"
    assert (child.config["parent_model"], child.config["parent_version"], child.config["parent_job_id"]) == (
        "cairn-qa",
        2,
        "parent",
    )
    assert (child.config["replay_dataset_id"], child.config["replay_dataset_version"]) == ("support-qa", 1)
    assert child.config["replay_fraction"] == 0.5
    manifest = AdapterManifest.model_validate_json(store.get(child.adapter_uri + ADAPTER_MANIFEST))
    assert (manifest.dataset_version, manifest.config["parent_version"]) == (2, 2)
    # seeded: the same job again gives the same metrics
    again = trainer(store, models_dir).train(
        job("again", dataset_version=2, config=config), lambda _: None, lambda: False, start
    )
    assert again.metrics == child.metrics


def test_a_continual_job_refuses_a_parent_of_another_base_model(
    store: InMemoryObjectStore, models_dir: Path
) -> None:
    parent, _ = train(store, models_dir, job("parent", config=lora(max_steps=1)))
    manifest = AdapterManifest.model_validate_json(store.get(parent.adapter_uri + ADAPTER_MANIFEST))
    other = manifest.model_copy(update={"base_model": "SmolLM2-135M-Instruct"})
    store.put(parent.adapter_uri + ADAPTER_MANIFEST, other.model_dump_json().encode())
    child_job = job("child", config=lora(start_from="production"))
    start = plan_start(child_job, "cairn-qa", ProductionVersion("cairn-qa", 2, parent.adapter_uri))
    with pytest.raises(TrainingError, match="was trained on SmolLM2-135M-Instruct"):
        trainer(store, models_dir).train(child_job, lambda _: None, lambda: False, start)


def test_a_base_job_records_where_it_started(store: InMemoryObjectStore, models_dir: Path) -> None:
    adapter, _ = train(store, models_dir, job(config=lora(max_steps=1)))
    assert adapter.config["start_from"] == "base"
    assert "older_heldout_loss" not in adapter.metrics


async def test_a_continual_job_through_the_runner_registers_its_parent_and_the_older_heldout_loss(
    store: InMemoryObjectStore, models_dir: Path
) -> None:
    deps = make_deps(trainer=trainer(store, models_dir))
    runner = JobRunner(deps)
    await deps.repo.create(job("first", config=lora(max_steps=3)))
    await runner.run_next()
    [first] = published(deps).events(ModelRegisteredV1.event_type)
    assert isinstance(first, ModelRegisteredV1)
    await deps.repo.record_promotion("cairn-qa", first.version, "production", first.adapter_uri, Clock()())
    put_dataset(store, version=2, train=rows(4, start=40), heldout=rows(2, start=50))
    await deps.repo.create(
        job("second", dataset_version=2, config=lora(max_steps=3, start_from="production"))
    )
    await runner.run_next()
    [_, second] = published(deps).events(ModelRegisteredV1.event_type)
    assert isinstance(second, ModelRegisteredV1)
    assert (second.version, second.dataset_version) == (2, 2)
    assert (second.config["start_from"], second.config["parent_version"]) == ("production", first.version)
    assert second.config["replay_fraction"] == 0.3
    assert second.metrics["replay_rows"] == 2  # 0.3 of v1's 6 train rows, rounded
    assert second.metrics["older_heldout_loss"] > 0
    assert second.metrics["heldout_loss"] > 0
    assert first.config["start_from"] == "base"
