"""No change to a published JSON Schema breaks backward compatibility with the same file on main.

The base is `$CAIRN_COMPAT_BASE` (default `main`): any git ref. Schema files that do not exist
there are new and fine; a breaking change must be a new version (v2) beside v1 instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cairn_events import schemas_dir
from cairn_events.compat import check_backward

BASE_REF = os.environ.get("CAIRN_COMPAT_BASE", "main")
SCHEMA_FILES = sorted(schemas_dir().glob("*/v*.schema.json"))


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def repo_root_or_skip(start: Path, ref: str) -> Path:
    """The git work tree holding `start`, once `ref` is known to resolve; skips the test otherwise."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot compare schemas with the base ref")
    top = git(start, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        pytest.skip(f"{start} is not in a git work tree: cannot compare schemas with {ref!r}")
    root = Path(top.stdout.strip())
    if git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        pytest.skip(f"git ref {ref!r} does not resolve (set CAIRN_COMPAT_BASE to compare with another ref)")
    return root


def published(root: Path, ref: str, path: Path) -> dict[str, Any] | None:
    """The schema at `ref`, or None when the file is new."""
    relative = path.resolve().relative_to(root.resolve()).as_posix()
    shown = git(root, "show", f"{ref}:{relative}")
    if shown.returncode != 0:
        return None
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def breaking_changes(root: Path, ref: str, paths: list[Path]) -> dict[str, list[str]]:
    """Breaking changes per schema file, against the same file at `ref`."""
    found: dict[str, list[str]] = {}
    for path in paths:
        old = published(root, ref, path)
        if old is None:
            continue
        problems = check_backward(old, json.loads(path.read_text(encoding="utf-8")))
        if problems:
            found[path.relative_to(root).as_posix()] = problems
    return found


def removed_versions(root: Path, ref: str, folder: Path) -> list[str]:
    """Schema versions published at `ref` that no longer exist in the work tree."""
    relative = folder.resolve().relative_to(root.resolve()).as_posix()
    listed = git(root, "ls-tree", "-r", "--name-only", ref, "--", relative)
    names = [line for line in listed.stdout.splitlines() if line.endswith(".schema.json")]
    return [name for name in names if not (root / name).exists()]


def test_schemas_stay_backward_compatible_with_base() -> None:
    root = repo_root_or_skip(schemas_dir(), BASE_REF)
    found = breaking_changes(root, BASE_REF, SCHEMA_FILES)
    report = "\n".join(f"{path}:\n  " + "\n  ".join(problems) for path, problems in found.items())
    assert not found, f"breaking changes against {BASE_REF}:\n{report}"


def test_no_published_version_is_deleted() -> None:
    root = repo_root_or_skip(schemas_dir(), BASE_REF)
    removed = removed_versions(root, BASE_REF, schemas_dir())
    assert not removed, f"published schema versions deleted since {BASE_REF}: {removed}"


def test_the_comparison_catches_a_breaking_edit(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    schema: dict[str, Any] = {
        "$id": "urn:cairn:schema:cairn.thing.happened:v1",
        "type": "object",
        "additionalProperties": False,
        "required": ["thing_id"],
        "properties": {"thing_id": {"type": "string"}, "size": {"type": "integer"}},
    }
    path = tmp_path / "schemas" / "cairn.thing.happened" / "v1.schema.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(schema))
    identity = ["-c", "user.name=contract-tests", "-c", "user.email=contract-tests@example.invalid"]
    assert git(tmp_path, "init", "-q", "-b", "main").returncode == 0
    assert git(tmp_path, "add", ".").returncode == 0
    assert git(tmp_path, *identity, "commit", "-q", "-m", "v1").returncode == 0

    new = tmp_path / "schemas" / "cairn.thing.new" / "v1.schema.json"
    new.parent.mkdir()
    new.write_text(json.dumps(schema))
    schema["properties"]["size"] = {"type": "string"}
    path.write_text(json.dumps(schema))

    root = repo_root_or_skip(path.parent, "main")
    found = breaking_changes(root, "main", [path, new])
    assert list(found) == ["schemas/cairn.thing.happened/v1.schema.json"]
    assert found["schemas/cairn.thing.happened/v1.schema.json"] == [
        "size: type changed from integer to string (integer values no longer accepted); "
        "publish a new version (v2) beside v1 instead"
    ]
    path.unlink()
    assert removed_versions(root, "main", tmp_path / "schemas") == [
        "schemas/cairn.thing.happened/v1.schema.json"
    ]
