"""Policies from YAML files: `<policy_dir>/<tenant>.yaml`, falling back to `default.yaml`.

Files are validated on load; an error names the file and the field (`input.toxicity.thresholds.0.action`).
A file is read again when it changes on disk, so a policy edit applies without a restart; an edit
that does not validate is refused (logged) and the last valid version stays in force.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cairn_observability import get_logger
from cairn_safety.domain.policy import Policy, PolicyError

__all__ = ["DEFAULT_POLICY", "PolicyError", "PolicyFiles", "load_policy", "resolve_policy_dir"]

DEFAULT_POLICY = "default"
_TENANT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
log = get_logger("cairn.safety.policies")


def resolve_policy_dir(configured: str | os.PathLike[str], cwd: Path | None = None) -> Path:
    """The policy folder: absolute as given; a relative one from the working directory, else from the
    repository root (the nearest folder above the working directory or this package that has it)."""
    path = Path(configured).expanduser()
    if path.is_absolute():
        return path
    here = (cwd or Path.cwd()).resolve()
    tried: list[Path] = []
    for base in (here, *here.parents, *Path(__file__).resolve().parents):
        candidate = base / path
        if candidate in tried:
            continue
        tried.append(candidate)
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"policy folder {str(path)!r} (CAIRN_POLICY_DIR) not found from {here} or above it, "
        "nor above the cairn_safety package; set CAIRN_POLICY_DIR to an absolute path"
    )


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append(f"{where}: {message}")
    return out


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file; raises PolicyError naming the file and fields at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(path, [f"not valid YAML: {' '.join(str(exc).split())}"]) from exc
    if not isinstance(data, dict):
        raise PolicyError(path, [f"must be a mapping of policy fields, got {type(data).__name__}"])
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise PolicyError(path, [f"name: {data['name']!r} must match the file name {path.stem!r}"])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(path, _problems(exc)) from exc


@dataclass
class _Cached:
    stamp: tuple[int, int]
    policy: Policy


class PolicyFiles:
    """PolicySource on a folder of YAML files, cached and re-read when a file changes."""

    def __init__(self, directory: Path, default: str = DEFAULT_POLICY) -> None:
        self.directory = directory
        self.default = default
        self._cache: dict[str, _Cached] = {}

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.yaml"

    def _load(self, name: str) -> Policy | None:
        """The policy `name`, None when its file does not exist."""
        path = self._path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            self._cache.pop(name, None)
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached.policy
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            if cached is None:
                raise
            log.error("policy file changed but is invalid; keeping the last valid version", error=str(exc))
            cached.stamp = stamp  # report once per change
            return cached.policy
        self._cache[name] = _Cached(stamp, policy)
        return policy

    def policy_for(self, tenant: str) -> Policy:
        """The tenant's policy (`<tenant>.yaml`), else the default one; raises PolicyError if neither loads."""
        if _TENANT_FILE.match(tenant) and tenant != self.default:
            found = self._load(tenant)
            if found is not None:
                return found
        default = self._load(self.default)
        if default is None:
            raise PolicyError(self._path(self.default), ["the default policy file is missing"])
        return default

    def policies(self) -> list[Policy]:
        """Every policy of the folder, by name (validated; see `validate_all`)."""
        return sorted(self.validate_all(), key=lambda p: p.name)

    def put(self, policy: Policy) -> Policy | None:
        """Write `policy` to `<name>.yaml` (a temporary file renamed over it, so a screening never
        reads half a file); the policy it replaced, if any. Comments of the old file are not kept."""
        path = self._path(policy.name)
        try:
            previous = self._load(policy.name)
        except PolicyError:
            previous = None
        body = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(body, encoding="utf-8")
        os.replace(partial, path)
        self._cache[policy.name] = _Cached(self._stamp(policy.name), load_policy(path))
        log.info("policy written", policy=policy.ref, file=str(path))
        return previous

    def remove(self, name: str) -> None:
        """Delete `<name>.yaml` (never the default policy's file)."""
        if name == self.default:
            raise ValueError("the default policy cannot be removed")
        self._path(name).unlink(missing_ok=True)
        self._cache.pop(name, None)

    def validate_all(self) -> list[Policy]:
        """Load every `*.yaml` in the folder (the default one must be there); raises PolicyError listing
        every problem of every file."""
        if not self.directory.is_dir():
            raise PolicyError(self.directory, ["policy folder does not exist"])
        policies: list[Policy] = []
        problems: list[str] = []
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                policies.append(load_policy(path))
            except PolicyError as exc:
                problems += [f"{path.name}: {p}" for p in exc.problems]
        if not any(p.name == self.default for p in policies) and not self._path(self.default).exists():
            problems.append(f"{self.default}.yaml: the default policy file is missing")
        if problems:
            raise PolicyError(self.directory, problems)
        for p in policies:
            self._cache[p.name] = _Cached(self._stamp(p.name), p)
        return policies

    def _stamp(self, name: str) -> tuple[int, int]:
        st = self._path(name).stat()
        return (st.st_mtime_ns, st.st_size)
