"""Datasets whose rows are sealed per tenant: opened for training, erased tenants' rows never trained
on, and clear errors when rows cannot be opened."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from cairn_auth.encryption import Keyring, MasterKey, new_master_key
from cairn_auth.object_keys import ObjectStoreTenantKeyStore
from cairn_auth.sealed_rows import seal_rows
from cairn_bus.objects import InMemoryObjectStore
from cairn_events.artifacts import HELDOUT_FILE, TRAIN_FILE, DatasetRow
from cairn_tuner.adapters.dataset_files import load_splits
from cairn_tuner.adapters.peft_trainer import PeftTrainer
from cairn_tuner.domain.jobs import StepReport, TrainingError

from .conftest import Clock, job, lora, rows

FOLDER = "s3://cairn/datasets/support-qa/v1/"


def keyring(objects: InMemoryObjectStore, master: str) -> Keyring:
    return Keyring(
        MasterKey.from_text(master), ObjectStoreTenantKeyStore(objects, "cairn-keys"), cache_ttl_s=0
    )


def tenants(split: list[DatasetRow], *names: str) -> list[DatasetRow]:
    """The rows, their tenants taken in turn from `names`."""
    return [r.model_copy(update={"tenant": names[i % len(names)]}) for i, r in enumerate(split)]


def put_sealed(
    objects: InMemoryObjectStore, ring: Keyring, train: list[DatasetRow], heldout: list[DatasetRow]
) -> None:
    """Write the splits as the feedback service does with a master key."""
    for name, split in ((TRAIN_FILE, train), (HELDOUT_FILE, heldout)):
        sealed = asyncio.run(seal_rows(ring, [r.model_dump(mode="json") for r in split]))
        objects.put(FOLDER + name, "".join(json.dumps(s) + "\n" for s in sealed).encode())


@pytest.fixture
def master() -> str:
    return new_master_key()


def test_sealed_splits_are_opened_and_an_erased_tenants_rows_left_out(master: str) -> None:
    objects = InMemoryObjectStore()
    train, heldout = tenants(rows(6), "acme", "globex"), tenants(rows(2, 6), "acme", "globex")
    put_sealed(objects, keyring(objects, master), train, heldout)
    assert "Answer the question" not in objects.get(FOLDER + TRAIN_FILE).decode()
    reader = keyring(objects, master)
    assert load_splits(objects, "cairn", "support-qa", 1, reader) == (train, heldout)

    asyncio.run(keyring(objects, master).erase("acme"))
    got_train, got_heldout = load_splits(objects, "cairn", "support-qa", 1, reader)
    assert got_train == [r for r in train if r.tenant == "globex"]
    assert got_heldout == [r for r in heldout if r.tenant == "globex"]


def test_a_split_left_without_rows_and_rows_without_a_key_are_training_errors(master: str) -> None:
    objects = InMemoryObjectStore()
    put_sealed(objects, keyring(objects, master), tenants(rows(3), "acme"), tenants(rows(1, 3), "acme"))
    with pytest.raises(TrainingError, match="no master key is configured"):
        load_splits(objects, "cairn", "support-qa", 1, None)
    asyncio.run(keyring(objects, master).erase("acme"))
    with pytest.raises(TrainingError, match=r"has no training rows.*erased tenants are left out"):
        load_splits(objects, "cairn", "support-qa", 1, keyring(objects, master))


def test_a_tampered_sealed_row_names_the_file(master: str) -> None:
    objects = InMemoryObjectStore()
    ring = keyring(objects, master)
    put_sealed(objects, ring, tenants(rows(2), "acme"), [])
    first, second = objects.get(FOLDER + TRAIN_FILE).decode().splitlines()
    moved = {**json.loads(second), "row_id": json.loads(first)["row_id"]}
    objects.put(FOLDER + TRAIN_FILE, f"{first}\n{json.dumps(moved)}\n".encode())
    with pytest.raises(TrainingError, match=re.escape(f"cannot read the rows of {FOLDER}{TRAIN_FILE}")):
        load_splits(objects, "cairn", "support-qa", 1, ring)


async def test_loading_from_a_running_event_loop_still_works(master: str) -> None:
    objects = InMemoryObjectStore()
    train = tenants(rows(2), "acme")
    sealed = await seal_rows(keyring(objects, master), [r.model_dump(mode="json") for r in train])
    objects.put(FOLDER + TRAIN_FILE, "".join(json.dumps(s) + "\n" for s in sealed).encode())
    assert load_splits(objects, "cairn", "support-qa", 1, keyring(objects, master)) == (train, [])


def test_the_trainer_trains_only_on_what_it_can_open(master: str, models_dir: Path) -> None:
    objects = InMemoryObjectStore()
    train = tenants(rows(6), "acme", "globex")
    put_sealed(objects, keyring(objects, master), train, tenants(rows(2, 6), "acme"))
    asyncio.run(keyring(objects, master).erase("acme"))
    trainer = PeftTrainer(
        objects,
        bucket="cairn",
        models_dir=models_dir,
        code_version="git:abc",
        clock=Clock(),
        keyring=keyring(objects, master),
    )
    steps: list[StepReport] = []
    adapter = trainer.train(job(config=lora(max_steps=2)), steps.append, lambda: False)
    assert (adapter.metrics["train_rows"], adapter.metrics["heldout_rows"]) == (3, 0)
    assert len(steps) == 2
