"""Objects in an S3-compatible store (SeaweedFS locally, MinIO or AWS S3 in production).

One small port, `ObjectStore`, over the `minio` client, plus an in-memory implementation for unit
tests. URIs are `s3://bucket/key`. Calls are blocking (minio is synchronous): async code runs them
with `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cairn_bus.settings import S3Settings

__all__ = [
    "InMemoryObjectStore",
    "ObjectNotFoundError",
    "ObjectStore",
    "S3ObjectStore",
    "download_prefix",
    "join_uri",
    "sha256_hex",
    "split_uri",
    "upload_folder",
]


class ObjectNotFoundError(FileNotFoundError):
    """The object (or every object under a prefix) does not exist."""


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); raises ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def join_uri(prefix: str, *parts: str) -> str:
    """`s3://b/a/` + `x`, `y.json` → `s3://b/a/x/y.json` (no doubled slashes)."""
    out = prefix.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of `data` (what dataset and adapter manifests record per file)."""
    return hashlib.sha256(data).hexdigest()


@runtime_checkable
class ObjectStore(Protocol):
    """Reads and writes whole objects by `s3://bucket/key` URI.

    Promises: `put` then `get` of the same URI returns the same bytes; `list` returns the URIs
    under a prefix in key order; a missing object raises `ObjectNotFoundError`; an unreachable
    store raises `OSError` (callers treat it as transient).
    """

    def put(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` at `uri`, replacing what was there."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes at `uri`."""
        ...

    def exists(self, uri: str) -> bool:
        """Whether an object is at `uri`."""
        ...

    def list(self, prefix_uri: str) -> list[str]:
        """Every object URI under `prefix_uri` (recursive), sorted."""
        ...

    def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every object under `prefix_uri`; returns how many were deleted."""
        ...


def upload_folder(store: ObjectStore, folder: Path, prefix_uri: str) -> dict[str, str]:
    """Upload every file under `folder` to `prefix_uri/<relative path>`; returns path → sha256."""
    hashes: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        store.put(join_uri(prefix_uri, rel), data)
        hashes[rel] = sha256_hex(data)
    return hashes


def download_prefix(store: ObjectStore, prefix_uri: str, folder: Path) -> list[Path]:
    """Download every object under `prefix_uri` into `folder` (relative layout kept); returns the files.

    Raises ObjectNotFoundError when nothing is under the prefix.
    """
    base = prefix_uri.rstrip("/") + "/"
    uris = store.list(base)
    if not uris:
        raise ObjectNotFoundError(f"no objects under {prefix_uri}")
    out = []
    for uri in uris:
        rel = PurePosixPath(uri[len(base) :])
        if ".." in rel.parts:
            raise ValueError(f"refusing object path outside the folder: {uri}")
        target = folder.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.get(uri))
        out.append(target)
    return out


class S3ObjectStore:
    """`ObjectStore` on an S3 API through the `minio` client; creates missing buckets on first write."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._buckets: set[str] = set()

    @classmethod
    def from_settings(cls, settings: S3Settings) -> S3ObjectStore:
        """A store for the endpoint and credentials in `settings`."""
        from minio import Minio

        client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        return cls(client)

    def _ensure_bucket(self, bucket: str) -> None:
        if bucket in self._buckets:
            return
        if not self.client.bucket_exists(bucket):
            from minio.error import S3Error

            try:
                self.client.make_bucket(bucket)
            except S3Error as exc:  # created concurrently by another writer
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        self._buckets.add(bucket)

    def put(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        bucket, key = split_uri(uri)
        self._ensure_bucket(bucket)
        self.client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def get(self, uri: str) -> bytes:
        from minio.error import S3Error

        bucket, key = split_uri(uri)
        try:
            response = self.client.get_object(bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchBucket"}:
                raise ObjectNotFoundError(uri) from exc
            raise
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def exists(self, uri: str) -> bool:
        from minio.error import S3Error

        bucket, key = split_uri(uri)
        try:
            self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"}:
                return False
            raise
        return True

    def list(self, prefix_uri: str) -> list[str]:
        from minio.error import S3Error

        bucket, prefix = split_uri(prefix_uri)
        try:
            objects = self.client.list_objects(bucket, prefix=prefix or None, recursive=True)
            return sorted(f"s3://{bucket}/{obj.object_name}" for obj in objects if not obj.is_dir)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return []
            raise

    def delete_prefix(self, prefix_uri: str) -> int:
        uris = self.list(prefix_uri)
        for uri in uris:
            bucket, key = split_uri(uri)
            self.client.remove_object(bucket, key)
        return len(uris)


class InMemoryObjectStore:
    """`ObjectStore` in a dict, for unit tests."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        split_uri(uri)
        self.objects[uri] = bytes(data)

    def get(self, uri: str) -> bytes:
        try:
            return self.objects[uri]
        except KeyError:
            raise ObjectNotFoundError(uri) from None

    def exists(self, uri: str) -> bool:
        return uri in self.objects

    def list(self, prefix_uri: str) -> list[str]:
        split_uri(prefix_uri)
        return sorted(uri for uri in self.objects if uri.startswith(prefix_uri))

    def delete_prefix(self, prefix_uri: str) -> int:
        uris = self.list(prefix_uri)
        for uri in uris:
            del self.objects[uri]
        return len(uris)
