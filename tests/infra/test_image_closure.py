"""The image's package set, installed by itself into a fresh virtual environment, imports every service.

What this proves, without Docker and without a package index: the local packages the Dockerfile
installs (derived from the services' `pyproject.toml`, see _image.py) build as real, non-editable
wheels; with only them and the third-party distributions their declared requirements pull in
(walked transitively from this interpreter's metadata, at the versions `requirements/constraints.txt`
pins here), `pip check` finds every requirement met and every service's entry points import (the
`cairn.services` router and `python -m cairn_<service>`'s `main`) from the fresh environment. No other
local package (the CLI, the local stack, the test helpers) is there. The third-party distributions
are linked from this virtual env rather than downloaded (a full download is gigabytes of torch); a
top-level folder shared by several distributions (a namespace package) is linked whole.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def load_image() -> ModuleType:
    """tests/infra/_image.py, imported once under a name of its own."""
    name = "cairn_tests_infra_image"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_image.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


image = load_image()
NOT_SOURCES = ("tests", "build", "*.egg-info", "__pycache__", ".mypy_cache", ".pytest_cache")
BUILD_TOOLS = ("setuptools",)  # the build backend of the local packages (pip builds them without isolation)


def third_party_distributions(requirements: list[str]) -> set[str]:
    """Every installed distribution the requirements need, transitively, markers and extras applied."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        extras_key = (name, *sorted(requirement.extras))
        key = "|".join(extras_key)
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(name)
        assert requirement.specifier.contains(dist.version, prereleases=True), (requirement, dist.version)
        for text in dist.requires or []:
            needed = Requirement(text)
            marker = needed.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *requirement.extras)):
                todo.append(Requirement(str(needed).split(";")[0]))
    return {key.split("|")[0] for key in seen}


def link_distribution(name: str, site_packages: Path) -> None:
    """Link every top-level file or folder of an installed distribution into `site_packages`."""
    dist = importlib.metadata.distribution(name)
    assert dist.files, f"{name} has no RECORD: cannot tell its files"
    for top in {f.parts[0] for f in dist.files if f.parts[0] != ".."}:
        target = site_packages / top
        if not target.exists():
            target.symlink_to(Path(str(dist.locate_file(top))))


def pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))},
    )


IMPORT_EVERY_SERVICE = """
import importlib, importlib.metadata, importlib.util, json, sys
packages = sys.argv[1].split(",")
routers = {}
for ep in importlib.metadata.entry_points(group="cairn.services"):
    routers[ep.name] = type(ep.load()).__name__
mains = {}
for package in packages:
    app = importlib.import_module(package + ".app")
    assert importlib.util.find_spec(package + ".__main__") is not None, package
    mains[package] = callable(app.main) and app.__file__.startswith(sys.prefix)
absent = [m for m in ("cairn_localstack", "cairn_testing", "cairn_cli") if importlib.util.find_spec(m)]
print(json.dumps({"routers": routers, "mains": mains, "dev_packages": absent}))
"""


@pytest.fixture(scope="module")
def fresh_environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding exactly the image's package set (see the module docstring)."""
    root = tmp_path_factory.mktemp("image") / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    site_packages = (
        root / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    closure = image.image_closure()
    for name in sorted(third_party_distributions(image.third_party_requirements(closure))) + list(
        BUILD_TOOLS
    ):
        link_distribution(name, site_packages)
    sources = (
        root.parent / "src"
    )  # built from a copy: setuptools writes build/ and *.egg-info beside the source
    folders = [
        str(shutil.copytree(folder, sources / name, ignore=shutil.ignore_patterns(*NOT_SOURCES)))
        for name, folder in closure.items()
    ]
    installed = pip(
        root / "bin" / "python", "install", "--no-deps", "--no-build-isolation", "--no-index", *folders
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    return root


def test_the_image_package_set_has_every_requirement_met(fresh_environment: Path) -> None:
    checked = pip(fresh_environment / "bin" / "python", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = pip(fresh_environment / "bin" / "python", "list", "--format=json")
    local = {canonicalize_name(p["name"]) for p in json.loads(listed.stdout) if p["name"].startswith("cairn")}
    assert local == set(image.image_closure())


def test_every_service_entry_point_imports_from_the_fresh_environment(fresh_environment: Path) -> None:
    services = [f for f in image.image_closure().values() if f.parent.name == "services"]
    packages = sorted(
        p.name for f in services for p in (f / "src").iterdir() if (p / "__init__.py").is_file()
    )
    run = subprocess.run(
        [str(fresh_environment / "bin" / "python"), "-s", "-c", IMPORT_EVERY_SERVICE, ",".join(packages)],
        capture_output=True,
        text=True,
        check=False,
        cwd=fresh_environment,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(fresh_environment), "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["mains"] == dict.fromkeys(packages, True)
    assert len(result["routers"]) == len(services)
    assert set(result["routers"].values()) == {"EventRouter"}
    assert result["dev_packages"] == []
