"""Adapter files from S3 into a local cache folder, checked against the tuner's manifest.

Each adapter lands in `<cache>/<name sanitised>/` (`cairn-qa:3` → `cairn-qa_3`), downloaded into a
temporary sibling first and renamed into place, so a half-written folder is never loaded. When the
backend reads the files elsewhere (SGLang on a shared volume mounted at another path), the path
returned is `<backend_root>/<name sanitised>` instead of the local one.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
from pathlib import Path

from cairn_bus.objects import ObjectNotFoundError, ObjectStore, download_prefix, sha256_hex
from cairn_events.artifacts import ADAPTER_MANIFEST
from cairn_inference.domain.completion import ModelError

__all__ = ["S3AdapterFiles", "default_adapter_cache", "sanitise"]


def sanitise(name: str) -> str:
    """A folder name for adapter `name`: anything but letters, digits, `.`, `_`, `-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"


def default_adapter_cache() -> Path:
    """`<repo>/.cairn/adapters`: the local cache of downloaded adapters."""
    from cairn_inference.adapters.conversion import find_repo_root

    return find_repo_root() / ".cairn" / "adapters"


class S3AdapterFiles:
    """`AdapterFiles` over an `ObjectStore`: download, verify, rename into the cache."""

    def __init__(self, store: ObjectStore, cache_dir: Path, *, backend_root: str | None = None) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self.backend_root = backend_root

    async def fetch(self, name: str, uri: str) -> str:
        """Download the adapter at `uri` as `name`; returns the folder as the backend sees it."""
        folder = await asyncio.to_thread(self._download, name, uri)
        if self.backend_root:
            return f"{self.backend_root.rstrip('/')}/{folder.name}"
        return str(folder)

    def _download(self, name: str, uri: str) -> Path:
        target = self.cache_dir / sanitise(name)
        staging = self.cache_dir / f".{target.name}.{uuid.uuid4().hex[:8]}"
        try:
            try:
                download_prefix(self.store, uri, staging)
            except ObjectNotFoundError as exc:
                raise ModelError(f"adapter {name!r}: no files at {uri}") from exc
            except ValueError as exc:
                raise ModelError(f"adapter {name!r}: {exc}") from exc
            _verify(name, uri, staging)
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:  # a concurrent download (an abandoned earlier attempt) got there first
                if not (target / "adapter_config.json").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def _verify(name: str, uri: str, folder: Path) -> None:
    """The PEFT config is there, and every file the manifest lists has the hash it records."""
    if not (folder / "adapter_config.json").is_file():
        raise ModelError(f"adapter {name!r}: no adapter_config.json at {uri}")
    manifest = folder / ADAPTER_MANIFEST
    if not manifest.is_file():
        return
    try:
        files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
    except (ValueError, AttributeError) as exc:
        raise ModelError(f"adapter {name!r}: unreadable {ADAPTER_MANIFEST}: {exc}") from exc
    for file_name, expected in dict(files).items():
        path = folder / file_name
        if not path.is_file():
            raise ModelError(f"adapter {name!r}: {file_name} listed in the manifest is missing at {uri}")
        if sha256_hex(path.read_bytes()) != expected:
            raise ModelError(f"adapter {name!r}: {file_name} does not match its manifest hash")
