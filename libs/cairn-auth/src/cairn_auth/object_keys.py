"""A keyring in the object store, shared by every service that reads the same S3 objects.

`Keyring` keeps tenants' wrapped data keys in a `TenantKeyStore`; the PostgreSQL one belongs to a
single service. Files that several services read (the dataset versions the feedback service writes
and the tuner and the evaluator read) need keys those services share: `ObjectStoreTenantKeyStore`
keeps them as objects in a bucket of their own, `<bucket>-keys` beside the data bucket (the data
bucket may be versioned; an erased key must not survive as an old version):

    s3://<bucket>-keys/ids/<key id>.json                 the key: tenant, wrapped key (base64), times
    s3://<bucket>-keys/tenants/<tenant, %-quoted>/<key id>   an empty marker: the tenant's keys

Every service reading the files uses the same master key (`read_secret("master_key")`). Erasing a
tenant replaces each of its key objects with a record without the wrapped key (`erased_at` set) and,
on S3, removes every older version of them. The store has no conditional write: two writers creating
a tenant's first key at the same moment may both succeed; both keys stay valid and both are erased
with the tenant, so nothing is lost or left readable.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from cairn_auth.encryption import EncryptionError, Keyring, MasterKey, StoredKey
from cairn_bus.objects import ObjectNotFoundError, ObjectStore, S3ObjectStore, join_uri, split_uri

__all__ = ["KEYS_BUCKET_SUFFIX", "ObjectStoreTenantKeyStore", "keys_bucket", "object_store_keyring"]

KEYS_BUCKET_SUFFIX = "-keys"
"""The keys of the files in bucket `b` live in bucket `b-keys`."""


def keys_bucket(bucket: str) -> str:
    """The bucket holding the keys of the files in `bucket`."""
    return f"{bucket}{KEYS_BUCKET_SUFFIX}"


def _record(key: StoredKey) -> bytes:
    return json.dumps(
        {
            "key_id": key.key_id,
            "tenant": key.tenant,
            "wrapped": base64.b64encode(key.wrapped).decode() if key.wrapped is not None else None,
            "created_at": key.created_at.isoformat(),
            "erased_at": key.erased_at.isoformat() if key.erased_at is not None else None,
        }
    ).encode()


def _stored(data: bytes, uri: str) -> StoredKey:
    try:
        doc = json.loads(data)
        wrapped, erased_at = doc["wrapped"], doc["erased_at"]
        return StoredKey(
            key_id=doc["key_id"],
            tenant=doc["tenant"],
            wrapped=base64.b64decode(wrapped) if wrapped is not None else None,
            created_at=datetime.fromisoformat(doc["created_at"]),
            erased_at=datetime.fromisoformat(erased_at) if erased_at is not None else None,
        )
    except (ValueError, KeyError, TypeError):
        raise EncryptionError(f"the key object {uri} is not a key record") from None


class ObjectStoreTenantKeyStore:
    """`TenantKeyStore` in an object store (see the module). Store calls run in a thread; an
    unreachable store raises OSError (transient)."""

    def __init__(self, objects: ObjectStore, bucket: str) -> None:
        """`bucket`: the bucket holding the keys (`keys_bucket(data_bucket)`)."""
        self.objects = objects
        self.root = f"s3://{bucket}/"

    def _key_uri(self, key_id: str) -> str:
        if not key_id or "/" in key_id:
            raise EncryptionError(f"invalid key id {key_id!r}")
        return join_uri(self.root, "ids", f"{key_id}.json")

    def _tenant_prefix(self, tenant: str) -> str:
        return join_uri(self.root, "tenants", quote(tenant, safe="")) + "/"

    def _get(self, key_id: str) -> StoredKey | None:
        uri = self._key_uri(key_id)
        try:
            return _stored(self.objects.get(uri), uri)
        except ObjectNotFoundError:
            return None

    def _tenant_keys(self, tenant: str) -> list[StoredKey]:
        prefix = self._tenant_prefix(tenant)
        keys = (self._get(uri.removeprefix(prefix)) for uri in self.objects.list(prefix))
        return [k for k in keys if k is not None and k.tenant == tenant]

    def _active(self, tenant: str) -> StoredKey | None:
        active = [k for k in self._tenant_keys(tenant) if k.erased_at is None]
        return min(active, key=lambda k: (k.created_at, k.key_id), default=None)

    def _add(self, key: StoredKey) -> StoredKey:
        existing = self._active(key.tenant)
        if existing is not None:
            return existing
        self.objects.put(self._key_uri(key.key_id), _record(key), "application/json")
        self.objects.put(self._tenant_prefix(key.tenant) + key.key_id, b"", "text/plain")
        active = self._active(key.tenant)
        if active is None:  # erased between the write and the read: the caller retries
            raise EncryptionError(f"tenant {key.tenant!r} was erased while its key was being created")
        return active

    def _erase(self, tenant: str) -> int:
        now = datetime.now(UTC)
        erased = 0
        for key in self._tenant_keys(tenant):
            if key.erased_at is not None:
                continue
            uri = self._key_uri(key.key_id)
            erased_key = StoredKey(key.key_id, key.tenant, None, key.created_at, now)
            self.objects.put(uri, _record(erased_key), "application/json")
            _drop_old_versions(self.objects, uri)
            erased += 1
        return erased

    async def active(self, tenant: str, *, conn: Any = None) -> StoredKey | None:
        """The tenant's key that is not erased, if any; `conn` is ignored (no database here)."""
        return await asyncio.to_thread(self._active, tenant)

    async def by_ids(self, key_ids: Sequence[str], *, conn: Any = None) -> list[StoredKey]:
        def get_all() -> list[StoredKey]:
            return [k for k in map(self._get, dict.fromkeys(key_ids)) if k is not None]

        return await asyncio.to_thread(get_all)

    async def add(self, key: StoredKey, *, conn: Any = None) -> StoredKey:
        return await asyncio.to_thread(self._add, key)

    async def erase(self, tenant: str) -> int:
        return await asyncio.to_thread(self._erase, tenant)


def _drop_old_versions(objects: ObjectStore, uri: str) -> None:
    """On S3, remove every version of `uri` but the latest: in a versioned bucket, an overwritten
    key would otherwise still be there to read."""
    if not isinstance(objects, S3ObjectStore):
        return
    bucket, key = split_uri(uri)
    for version in objects.client.list_objects(bucket, prefix=key, include_version=True):
        latest = str(version.is_latest).lower() == "true"  # minio gives the XML text
        if version.object_name == key and not latest and version.version_id:
            objects.client.remove_object(bucket, key, version_id=version.version_id)


def object_store_keyring(
    objects: ObjectStore, bucket: str, master: MasterKey | Literal["environment"] | None = "environment"
) -> Keyring | None:
    """The keyring of the files in `bucket` (their keys in `keys_bucket(bucket)`), shared by every
    service reading them; `master` defaults to the configured one (`MasterKey.configured()`).
    None when there is no master key: files are written and read as they are."""
    key = MasterKey.configured() if master == "environment" else master
    if key is None:
        return None
    return Keyring(key, ObjectStoreTenantKeyStore(objects, keys_bucket(bucket)))
