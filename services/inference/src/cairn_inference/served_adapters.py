"""The adapters loaded on the backend, kept in step with the registry view.

Production and staging versions are loaded when promoted (and at start); any other version on its
first request. A load happens once under a lock per adapter, so concurrent requests naming the same
new version wait for one download and one load. Archived versions are unloaded (a later explicit
reference loads them again).
"""

from __future__ import annotations

import asyncio
import contextlib

from cairn_events.common import ModelStage
from cairn_inference.domain.completion import AdapterNotFoundError, InferenceError, ModelError
from cairn_inference.domain.references import ResolvedModel
from cairn_inference.domain.registry import RegistryView
from cairn_inference.ports import AdapterFiles, AdapterManager
from cairn_observability import get_logger

__all__ = ["SERVED_STAGES", "ServedAdapters"]

log = get_logger("cairn.inference")

SERVED_STAGES = (ModelStage.PRODUCTION, ModelStage.STAGING)
"""Stages whose adapters are loaded ahead of requests."""


class ServedAdapters:
    """Loads and unloads adapters on the backend's `AdapterManager`, fetching files through `AdapterFiles`."""

    def __init__(self, manager: AdapterManager | None, files: AdapterFiles) -> None:
        self.manager = manager
        self.files = files
        self._loaded: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def loaded(self) -> dict[str, str]:
        """Adapters loaded through this object: name → adapter URI."""
        return dict(self._loaded)

    async def ensure(self, resolved: ResolvedModel) -> None:
        """Make the adapter of `resolved` usable (nothing to do without one).

        Raises ModelError when its files cannot be fetched or the backend rejects them,
        BackendUnavailableError when the backend is unreachable.
        """
        name, uri = resolved.adapter, resolved.adapter_uri
        if name is None or uri is None or self._loaded.get(name) == uri:
            return
        if self.manager is None:
            raise ModelError(f"adapter {name!r} needed, but this backend cannot load adapters")
        async with self._locks.setdefault(name, asyncio.Lock()):
            if self._loaded.get(name) == uri:
                return
            try:
                path = await self.files.fetch(name, uri)
            except InferenceError:
                raise
            except Exception as exc:  # the object store: OSError, S3Error, ...
                raise ModelError(f"adapter {name!r}: cannot download {uri}: {exc}") from exc
            await self.manager.load_adapter(name, path)
            self._loaded[name] = uri
            log.info("adapter loaded", adapter=name, uri=uri, path=path)

    def forget(self, name: str) -> None:
        """The backend no longer has `name` (it restarted, or unloaded it): load it again on next use."""
        self._loaded.pop(name, None)

    async def unload(self, name: str) -> None:
        """Unload adapter `name` if it was loaded here."""
        if self.manager is None or name not in self._loaded:
            return
        async with self._locks.setdefault(name, asyncio.Lock()):
            if name not in self._loaded:
                return
            with contextlib.suppress(AdapterNotFoundError):  # already gone: the same outcome
                await self.manager.unload_adapter(name)
            del self._loaded[name]
            log.info("adapter unloaded", adapter=name)

    async def sync(self, view: RegistryView, model_name: str) -> None:
        """Unload the archived versions of `model_name`, load its production and staging versions.

        Failures are logged, never raised: a request for a version that could not be loaded
        tries again and fails with the reason.
        """
        for version in view.versions(model_name):
            name = version.adapter_name
            if (
                name
                and name in self._loaded
                and view.stage_of(model_name, version.version) is ModelStage.ARCHIVED
            ):
                try:
                    await self.unload(name)
                except Exception as exc:  # the backend away: it keeps the adapter, harmless
                    log.warning("adapter unload failed", adapter=name, error=str(exc))
        for stage in SERVED_STAGES:
            served = view.in_stage(model_name, stage)
            if served is None or served.adapter_name is None:
                continue
            try:
                await self.ensure(ResolvedModel.of(served))
            except Exception as exc:  # reported again to the requests that need it
                log.warning(
                    "adapter load failed", adapter=served.adapter_name, stage=stage.value, error=str(exc)
                )

    async def sync_all(self, view: RegistryView) -> None:
        """`sync` every model of the view (at start, once the view is rebuilt)."""
        for model_name in view.models():
            await self.sync(view, model_name)
