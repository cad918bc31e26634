"""Dataset files sealed per tenant: no plaintext in S3, hashes of the stored bytes, the unsealed path
unchanged, and a tenant's erasure through the handler reaching both keyrings."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cairn_auth.encryption import (
    SEALED_FIELD,
    TENANT_ERASE,
    InMemoryTenantKeyStore,
    Keyring,
    MasterKey,
    new_master_key,
)
from cairn_auth.management import admin_action
from cairn_auth.object_keys import ObjectStoreTenantKeyStore, object_store_keyring
from cairn_auth.sealed_rows import open_rows
from cairn_bus import InMemoryPublisher
from cairn_bus.objects import InMemoryObjectStore, ObjectStore, S3ObjectStore
from cairn_events.artifacts import DatasetRow
from cairn_feedback import bootstrap
from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_feedback.app import router
from cairn_feedback.bootstrap import Deps
from cairn_feedback.datasets import Built, build_dataset
from cairn_feedback.domain.manifest import split_files
from cairn_feedback.domain.rules import Rules
from cairn_feedback.handlers import on_admin_action
from cairn_feedback.ports import Repository
from cairn_feedback.settings import Settings
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
NOW = datetime(2025, 3, 5, 8, 0, tzinfo=UTC)
SECRETS = ("reset my password", "Settings > Security", "globex invoices", "Billing > Invoices")


async def seed(repository: Repository, acme: str = "acme", globex: str = "globex") -> None:
    """Three corrected requests of `acme`, three of `globex`, each with words that must not leak."""
    for i in range(6):
        tenant, question, answer = (
            (acme, f"How do I reset my password ({i})?", f"Use Settings > Security ({i}).")
            if i % 2 == 0
            else (globex, f"Where are the globex invoices ({i})?", f"Under Billing > Invoices ({i}).")
        )
        rid = f"req-{tenant}-{i}"
        await repository.save_request(F.request(rid, tenant=tenant), f"e{i}a")
        await repository.save_screening(F.screening(rid, question, tenant=tenant), f"e{i}b")
        await repository.save_response(F.response(rid, "a first answer", tenant=tenant), f"e{i}c")
        await repository.save_feedback(
            F.feedback(f"fb-{rid}", rid, tenant=tenant, corrected_answer=answer), f"e{i}d"
        )


async def build(
    repository: Repository, objects: ObjectStore, keyring: Keyring | None, dataset_id: str = "support-qa"
) -> Built:
    return await build_dataset(
        repository,
        objects,
        InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types),
        dataset_id=dataset_id,
        rules=Rules(corrected=True),
        bucket="cairn",
        code_version="git:abc",
        heldout=0.34,
        seed=3,
        clock=lambda: NOW,
        keyring=keyring,
    )


def lines(objects: ObjectStore, uri: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in objects.get(uri).decode().splitlines()]


def object_keyring(objects: ObjectStore, master: str, **kw: Any) -> Keyring:
    return Keyring(MasterKey.from_text(master), ObjectStoreTenantKeyStore(objects, "cairn-keys"), **kw)


async def test_sealed_files_hold_no_plaintext_and_the_manifest_hashes_the_stored_bytes() -> None:
    repository, objects, master = InMemoryRepository(), InMemoryObjectStore(), new_master_key()
    await seed(repository)
    built = await build(repository, objects, object_keyring(objects, master))
    manifest, uri = built.version.manifest, built.version.uri
    assert (manifest.row_count, manifest.heldout_rows > 0) == (6, True)
    for f in manifest.files:
        data = objects.get(uri + f.name)
        assert (f.sha256, f.bytes) == (hashlib.sha256(data).hexdigest(), len(data))
        assert built.event.files_sha256[f.name] == f.sha256
        for secret in SECRETS:
            assert secret not in data.decode(), (f.name, secret)
        stored = lines(objects, uri + f.name)
        assert len(stored) == f.rows
        assert all(set(line) == {"row_id", "tenant", SEALED_FIELD} for line in stored)
    # the tuner and the evaluator open them with the same master key and the keys in S3
    reader = object_keyring(objects, master)
    for name, rows in (("train.jsonl", built.curation.train), ("heldout.jsonl", built.curation.heldout)):
        opened = await open_rows(reader, lines(objects, uri + name))
        assert [DatasetRow.model_validate(r) for r in opened.rows] == rows
    assert sorted(u.split("/")[-1] for u in objects.list("s3://cairn-keys/tenants/")) == sorted(
        u.split("/")[-1].removesuffix(".json") for u in objects.list("s3://cairn-keys/ids/")
    )  # one key per tenant


async def test_without_a_keyring_the_files_are_the_rows_as_they_are() -> None:
    repository, objects = InMemoryRepository(), InMemoryObjectStore()
    await seed(repository)
    built = await build(repository, objects, None)
    for name, data in split_files(built.curation).items():
        assert objects.get(built.version.uri + name) == data
    assert (
        "reset my password"
        in objects.get(built.version.uri + "train.jsonl").decode()
        + objects.get(built.version.uri + "heldout.jsonl").decode()
    )
    assert objects.list("s3://cairn-keys/") == []


async def test_the_erasure_handler_destroys_the_tenant_in_both_keyrings() -> None:
    repository, objects, master = InMemoryRepository(), InMemoryObjectStore(), new_master_key()
    await seed(repository)
    pg_keys = Keyring(MasterKey.from_text(master), InMemoryTenantKeyStore())
    await pg_keys.seal("acme", b"a payload")
    datasets = object_keyring(objects, master)
    built = await build(repository, objects, datasets)
    deps = Deps(
        repository, objects, InMemoryPublisher("/cairn/feedback"), keyring=pg_keys, dataset_keyring=datasets
    )
    erase = admin_action("ops", TENANT_ERASE, "acme", tenant="acme")
    meta = InMemoryPublisher("/cairn/cli").build(erase).meta
    await on_admin_action(erase, meta, deps)
    await on_admin_action(erase, meta, deps)  # redelivered: idempotent
    assert await pg_keys.store.active("acme") is None
    assert await datasets.store.active("acme") is None
    assert await datasets.store.active("globex") is not None
    reader = object_keyring(objects, master)  # another service, nothing cached
    for name in ("train.jsonl", "heldout.jsonl"):
        opened = await open_rows(reader, lines(objects, built.version.uri + name))
        assert {r["tenant"] for r in opened.rows} <= {"globex"}
        assert opened.erased == sum(
            1 for line in lines(objects, built.version.uri + name) if line["tenant"] == "acme"
        )
    train = await open_rows(reader, lines(objects, built.version.uri + "train.jsonl"))
    assert train.rows
    assert train.erased


async def test_with_only_the_dataset_keyring_the_erasure_still_happens() -> None:
    objects, master = InMemoryObjectStore(), new_master_key()
    datasets = object_keyring(objects, master)
    await datasets.seal("acme", b"row")
    deps = Deps(InMemoryRepository(), objects, InMemoryPublisher("/cairn/feedback"), dataset_keyring=datasets)
    erase = admin_action("ops", TENANT_ERASE, "acme", tenant="acme")
    await on_admin_action(erase, InMemoryPublisher("/cairn/cli").build(erase).meta, deps)
    assert await datasets.store.active("acme") is None


@pytest.fixture
def settings(local_stack: dict[str, str], fresh_database: str) -> Settings:
    return Settings(
        postgres_dsn=fresh_database,
        s3_endpoint=local_stack["CAIRN_S3_ENDPOINT"],
        s3_access_key=local_stack["CAIRN_S3_ACCESS_KEY"],
        s3_secret_key=local_stack["CAIRN_S3_SECRET_KEY"],
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Deps]:
    async with bootstrap.build(settings, InMemoryPublisher("/cairn/feedback")) as deps:
        yield deps


@pytest.mark.integration
async def test_on_s3_the_service_seals_rows_and_an_erasure_leaves_the_other_tenant(service: Deps) -> None:
    assert service.keyring is not None  # the test stack's master key
    assert service.dataset_keyring is not None
    acme, globex = f"acme-{uuid.uuid4().hex[:6]}", f"globex-{uuid.uuid4().hex[:6]}"
    await seed(service.repository, acme, globex)
    dataset_id = f"it-{uuid.uuid4().hex[:8]}"
    objects = service.objects
    assert isinstance(objects, S3ObjectStore)
    try:
        built = await build(service.repository, objects, service.dataset_keyring, dataset_id)
        uri = built.version.uri
        raw = b"".join(
            [await asyncio.to_thread(objects.get, uri + n) for n in ("train.jsonl", "heldout.jsonl")]
        )
        for secret in SECRETS:
            assert secret.encode() not in raw
        erase = admin_action("ops", TENANT_ERASE, acme, tenant=acme)
        await on_admin_action(erase, InMemoryPublisher("/cairn/cli").build(erase).meta, service)
        reader = object_store_keyring(objects, "cairn")  # as the tuner and the evaluator build it
        assert reader is not None
        opened = await open_rows(reader, [json.loads(line) for line in raw.decode().splitlines()])
        assert {r["tenant"] for r in opened.rows} == {globex}
        assert (opened.erased, opened.erased_tenants) == (3, [acme])
        assert any("Billing > Invoices" in r["completion"] for r in opened.rows)
    finally:
        await asyncio.to_thread(objects.delete_prefix, f"s3://cairn/datasets/{dataset_id}/")
        for tenant in (acme, globex):
            await asyncio.to_thread(_drop_keys, objects, tenant)


def _drop_keys(objects: ObjectStore, tenant: str) -> None:
    prefix = f"s3://cairn-keys/tenants/{tenant}/"
    for marker in objects.list(prefix):
        objects.delete_prefix(f"s3://cairn-keys/ids/{marker.removeprefix(prefix)}.json")
    objects.delete_prefix(prefix)
