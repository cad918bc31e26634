"""The keyring in the object store (shared by the services reading dataset files) and sealed rows:
the same behaviour in memory and on the test stack's S3, erasure, and rows that cannot be opened."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from cairn_auth.encryption import EncryptionError, Keyring, MasterKey, StoredKey, new_master_key
from cairn_auth.object_keys import ObjectStoreTenantKeyStore, keys_bucket, object_store_keyring
from cairn_auth.sealed_rows import is_sealed_row, open_rows, seal_rows
from cairn_bus.objects import InMemoryObjectStore, ObjectStore, S3ObjectStore
from cairn_bus.settings import S3Settings

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def s3_store(local_stack: dict[str, str]) -> S3ObjectStore:
    env = {k.removeprefix("CAIRN_").lower(): v for k, v in local_stack.items() if k.startswith("CAIRN_S3_")}
    return S3ObjectStore.from_settings(S3Settings.model_validate(env))


@dataclass(frozen=True)
class Keys:
    objects: ObjectStore
    bucket: str

    def store(self) -> ObjectStoreTenantKeyStore:
        return ObjectStoreTenantKeyStore(self.objects, self.bucket)

    def ring(self, master: str, **kw: Any) -> Keyring:
        return Keyring(MasterKey.from_text(master), self.store(), **kw)


@pytest.fixture(params=["memory", pytest.param("s3", marks=pytest.mark.integration)])
def keys(request: pytest.FixtureRequest) -> Iterator[Keys]:
    """Each test runs against both stores, so the fake cannot drift from S3 (there, in a bucket of
    the test's own, removed afterwards)."""
    if request.param == "memory":
        yield Keys(InMemoryObjectStore(), "cairn-keys")
        return
    store = s3_store(request.getfixturevalue("local_stack"))
    bucket = f"it-keys-{uuid.uuid4().hex[:8]}"
    yield Keys(store, bucket)
    store.delete_prefix(f"s3://{bucket}/")
    if store.client.bucket_exists(bucket):
        store.client.remove_bucket(bucket)


def tenant() -> str:
    """A tenant no other test (or run) uses."""
    return f"t-{uuid.uuid4().hex[:10]}"


def key(tenant_id: str, key_id: str | None = None) -> StoredKey:
    return StoredKey(key_id or uuid.uuid4().hex, tenant_id, b"w" * 60, NOW)


async def test_keys_are_stored_found_by_id_and_one_is_active(keys: Keys) -> None:
    store = keys.store()
    acme, globex = tenant(), tenant()
    assert await store.active(acme) is None
    first = await store.add(key(acme))
    assert first.tenant == acme
    assert await store.add(key(acme)) == first  # the tenant already has an active key
    other = await store.add(key(globex))
    assert await store.active(acme) == first
    found = await store.by_ids([first.key_id, "0" * 32, other.key_id])
    assert sorted(k.key_id for k in found) == sorted([first.key_id, other.key_id])
    assert found[0].wrapped == b"w" * 60


async def test_erase_destroys_the_wrapped_keys_of_one_tenant(keys: Keys) -> None:
    store = keys.store()
    acme, globex = tenant(), tenant()
    a, g = await store.add(key(acme)), await store.add(key(globex))
    assert await store.erase(acme) == 1
    assert await store.erase(acme) == 0  # idempotent
    assert await store.active(acme) is None
    [erased] = await store.by_ids([a.key_id])
    assert (erased.wrapped, erased.tenant) == (None, acme)
    assert erased.erased_at is not None
    record = keys.objects.get(f"s3://{keys.bucket}/ids/{a.key_id}.json")
    assert json.loads(record)["wrapped"] is None
    assert base64.b64encode(b"w" * 60) not in record
    assert await store.active(globex) == g
    fresh = await store.add(key(acme))  # what the tenant sends later gets a new key
    assert fresh.key_id != a.key_id


async def test_a_key_record_that_is_not_one_is_refused() -> None:
    objects = InMemoryObjectStore()
    objects.put("s3://cairn-keys/ids/abc.json", b"{}")
    with pytest.raises(EncryptionError, match="not a key record"):
        await ObjectStoreTenantKeyStore(objects, "cairn-keys").by_ids(["abc"])


async def test_another_service_with_the_same_master_key_opens_and_loses_it_on_erasure(
    keys: Keys,
) -> None:
    master, acme, globex = new_master_key(), tenant(), tenant()
    writer, reader = keys.ring(master), keys.ring(master, cache_ttl_s=0)
    a, g = await writer.seal_many([(acme, b"acme's secret"), (globex, b"globex's secret")])
    assert await reader.open_many([a, g]) == [b"acme's secret", b"globex's secret"]
    assert await writer.erase(acme) == 1
    assert await reader.open_many([a, g]) == [None, b"globex's secret"]
    with pytest.raises(EncryptionError, match="cannot be unwrapped"):
        await keys.ring(new_master_key()).open(g)  # another master key opens nothing


async def test_rows_round_trip_sealed_and_erased_rows_are_left_out(keys: Keys) -> None:
    acme, globex = tenant(), tenant()
    keyring = keys.ring(new_master_key(), cache_ttl_s=0)
    rows = [
        {"row_id": "r1", "tenant": acme, "completion": "Reset it under Settings."},
        {"row_id": "r2", "tenant": globex, "completion": "Call support."},
        {"row_id": "r3", "tenant": acme, "completion": "Mail us."},
    ]
    sealed = await seal_rows(keyring, rows)
    assert all(is_sealed_row(s) for s in sealed)
    assert [(s["row_id"], s["tenant"]) for s in sealed] == [(r["row_id"], r["tenant"]) for r in rows]
    assert not any("Settings" in json.dumps(s) or "support" in json.dumps(s) for s in sealed)
    plain = {"row_id": "r0", "tenant": acme, "completion": "stored as it is"}
    opened = await open_rows(keyring, [plain, *sealed])
    assert (opened.rows, opened.positions, opened.erased) == ([plain, *rows], [0, 1, 2, 3], 0)

    await keyring.erase(acme)
    opened = await open_rows(keyring, [plain, *sealed])
    assert opened.rows == [plain, rows[1]]
    assert opened.positions == [0, 2]
    assert (opened.erased, opened.erased_tenants) == (2, [acme])


async def test_rows_that_cannot_be_opened_are_an_error() -> None:
    keyring = Keys(InMemoryObjectStore(), "cairn-keys").ring(new_master_key())
    [sealed] = await seal_rows(keyring, [{"row_id": "r1", "tenant": "acme", "completion": "x"}])
    with pytest.raises(EncryptionError, match="no master key is configured"):
        await open_rows(None, [sealed])
    with pytest.raises(EncryptionError, match="does not match its clear row_id"):
        await open_rows(keyring, [{**sealed, "row_id": "r2"}])
    with pytest.raises(EncryptionError, match="unknown key"):
        await open_rows(Keys(InMemoryObjectStore(), "cairn-keys").ring(new_master_key()), [sealed])
    with pytest.raises(ValueError, match="row_id"):
        await seal_rows(keyring, [{"tenant": "acme"}])
    assert (await open_rows(None, [{"row_id": "r1", "tenant": "acme"}])).rows == [
        {"row_id": "r1", "tenant": "acme"}
    ]


def test_the_keyring_follows_the_master_key_and_keeps_keys_beside_the_bucket() -> None:
    objects = InMemoryObjectStore()
    assert object_store_keyring(objects, "cairn", None) is None
    keyring = object_store_keyring(objects, "cairn", MasterKey.from_text(new_master_key()))
    assert keyring is not None
    assert isinstance(keyring.store, ObjectStoreTenantKeyStore)
    assert keyring.store.root == f"s3://{keys_bucket('cairn')}/" == "s3://cairn-keys/"


@pytest.mark.integration
async def test_on_a_versioned_bucket_no_old_version_keeps_the_erased_key(local_stack: dict[str, str]) -> None:
    from minio.commonconfig import ENABLED
    from minio.versioningconfig import VersioningConfig

    objects = s3_store(local_stack)
    bucket = f"it-keys-{uuid.uuid4().hex[:8]}"
    objects.client.make_bucket(bucket)
    objects.client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    store = ObjectStoreTenantKeyStore(objects, bucket)
    try:
        added = await store.add(key("acme"))
        await store.erase("acme")
        versions = list(
            objects.client.list_objects(bucket, prefix=f"ids/{added.key_id}.json", include_version=True)
        )
        assert len(versions) == 1
        body = objects.client.get_object(
            bucket, f"ids/{added.key_id}.json", version_id=versions[0].version_id
        )
        assert json.loads(body.read())["wrapped"] is None
        body.close()
        body.release_conn()
    finally:
        for obj in list(objects.client.list_objects(bucket, recursive=True, include_version=True)):
            objects.client.remove_object(bucket, obj.object_name, version_id=obj.version_id)
        objects.client.remove_bucket(bucket)
