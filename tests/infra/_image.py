"""The production image's package set, derived from the `pyproject.toml` files (no hand-kept list).

Loaded by path (see `load_image` in test_compose.py and test_image_closure.py), like _support.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"
CONSTRAINTS = REPO_ROOT / "requirements" / "constraints.txt"


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement string."""
    return normalize(re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0])


def local_projects() -> dict[str, Path]:
    """Every package of the repository (libs/, services/, infra/*/) by normalized name: its folder."""
    projects: dict[str, Path] = {}
    for pyproject in sorted(REPO_ROOT.glob("*/*/pyproject.toml")):
        if pyproject.parts[-3] not in ("libs", "services", "infra"):
            continue
        project: dict[str, Any] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        projects[normalize(project["name"])] = pyproject.parent
    return projects


def dependencies(folder: Path) -> list[str]:
    """The runtime requirements (`[project].dependencies`) of the package in `folder`."""
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project.get("dependencies", []))


def image_closure() -> dict[str, Path]:
    """Every service, and every local package one of them needs, directly or through another one."""
    projects = local_projects()
    todo = [name for name, folder in projects.items() if folder.parent.name == "services"]
    closure: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure[name] = projects[name]
        todo.extend(r for r in map(requirement_name, dependencies(projects[name])) if r in projects)
    return closure


def third_party_requirements(closure: dict[str, Path]) -> list[str]:
    """The requirements of the closure on packages that are not the repository's own."""
    projects = local_projects()
    return sorted(
        {
            r
            for folder in closure.values()
            for r in dependencies(folder)
            if requirement_name(r) not in projects
        }
    )


def dockerfile_installs() -> list[str]:
    """The local folders (`libs/x`, `services/y`) the Dockerfile's `pip install` names."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    return re.findall(r"\./((?:libs|services|infra)/[A-Za-z0-9_.-]+)", text)
