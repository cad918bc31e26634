"""A dataset version sealed per tenant, across the three services: the feedback service builds it,
the tuner and the evaluator read it with their own keyrings (same master key, keys in the object
store); after `tenant.erase` reaches the feedback service, only the other tenant's rows remain."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn_auth.encryption import TENANT_ERASE, MasterKey, new_master_key
from cairn_auth.management import admin_action
from cairn_auth.object_keys import object_store_keyring
from cairn_bus import InMemoryPublisher
from cairn_bus.objects import InMemoryObjectStore, ObjectStore, S3ObjectStore
from cairn_bus.settings import S3Settings
from cairn_evaluator.adapters.heldout import read_heldout
from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_feedback.app import router
from cairn_feedback.bootstrap import Deps
from cairn_feedback.datasets import build_dataset
from cairn_feedback.domain.rules import Rules
from cairn_feedback.handlers import on_admin_action
from cairn_testing.suites import load_suite
from cairn_tuner.adapters.dataset_files import load_splits

F: Any = load_suite(Path(__file__).parents[2] / "services/feedback/tests/feedback_factories.py")


@pytest.fixture(params=["memory", pytest.param("s3", marks=pytest.mark.integration)])
def objects(request: pytest.FixtureRequest) -> Iterator[ObjectStore]:
    if request.param == "memory":
        yield InMemoryObjectStore()
        return
    stack: dict[str, str] = request.getfixturevalue("local_stack")
    env = {k.removeprefix("CAIRN_").lower(): v for k, v in stack.items() if k.startswith("CAIRN_S3_")}
    yield S3ObjectStore.from_settings(S3Settings.model_validate(env))


async def test_built_read_by_tuner_and_evaluator_and_erased_for_one_tenant(objects: ObjectStore) -> None:
    master = MasterKey.from_text(new_master_key())
    acme, globex = f"acme-{uuid.uuid4().hex[:6]}", f"globex-{uuid.uuid4().hex[:6]}"
    dataset_id = f"it-{uuid.uuid4().hex[:8]}"
    repository = InMemoryRepository()
    for i in range(8):
        tenant = (acme, globex)[i % 2]
        # rows independent of the (random) tenant names, so the held-out split is the same every run and
        # leaves rows of both tenants in each split
        rid = f"req-{i}"
        await repository.save_request(F.request(rid, tenant=tenant), f"e{i}a")
        await repository.save_screening(F.screening(rid, f"question {i} asks?", tenant=tenant), f"e{i}b")
        await repository.save_response(F.response(rid, tenant=tenant), f"e{i}c")
        await repository.save_feedback(
            F.feedback(f"fb-{rid}", rid, tenant=tenant, corrected_answer=f"secret answer {i}"), f"e{i}d"
        )
    feedback = object_store_keyring(objects, "cairn", master)
    try:
        built = await build_dataset(
            repository,
            objects,
            InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types),
            dataset_id=dataset_id,
            rules=Rules(corrected=True),
            bucket="cairn",
            code_version="test",
            heldout=0.5,
            keyring=feedback,
        )
        for name in ("train.jsonl", "heldout.jsonl"):
            raw = await asyncio.to_thread(objects.get, built.version.uri + name)
            assert b"secret answer" not in raw
            assert b"asks" not in raw
        tuner, evaluator = (object_store_keyring(objects, "cairn", master) for _ in range(2))
        train, heldout = await asyncio.to_thread(load_splits, objects, "cairn", dataset_id, 1, tuner)
        assert (train, heldout) == (built.curation.train, built.curation.heldout)
        assert await read_heldout(objects, "cairn", dataset_id, 1, evaluator) == sorted(
            built.curation.heldout, key=lambda r: r.row_id
        )

        deps = Deps(repository, objects, InMemoryPublisher("/cairn/feedback"), dataset_keyring=feedback)
        erase = admin_action("ops", TENANT_ERASE, acme, tenant=acme)
        await on_admin_action(erase, InMemoryPublisher("/cairn/cli").build(erase).meta, deps)

        tuner, evaluator = (object_store_keyring(objects, "cairn", master) for _ in range(2))
        train, heldout = await asyncio.to_thread(load_splits, objects, "cairn", dataset_id, 1, tuner)
        assert {r.tenant for r in built.curation.train} == {acme, globex}
        assert train == [r for r in built.curation.train if r.tenant == globex]
        assert heldout == [r for r in built.curation.heldout if r.tenant == globex]
        assert await read_heldout(objects, "cairn", dataset_id, 1, evaluator) == sorted(
            (r for r in built.curation.heldout if r.tenant == globex), key=lambda r: r.row_id
        )
    finally:
        await asyncio.to_thread(objects.delete_prefix, f"s3://cairn/datasets/{dataset_id}/")
        for tenant in (acme, globex):
            prefix = f"s3://cairn-keys/tenants/{tenant}/"
            for marker in await asyncio.to_thread(objects.list, prefix):
                await asyncio.to_thread(
                    objects.delete_prefix, f"s3://cairn-keys/ids/{marker.removeprefix(prefix)}.json"
                )
            await asyncio.to_thread(objects.delete_prefix, prefix)
