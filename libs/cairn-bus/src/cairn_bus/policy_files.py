"""Per-tenant policy files: `<folder>/<tenant>.yaml`, else `default.yaml`, validated by a pydantic model.

A file is validated when read; an error names the file and each field at fault
(`rules.0.chain: List should have at least 1 item`). A file is read again when it changes on disk, so an
edit applies without a restart; an edit that does not validate is logged and the last valid version stays
in force. The model's `name` field, when it has one, is the file's name without `.yaml`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cairn_observability import get_logger

__all__ = [
    "PolicyFileError",
    "TenantPolicyFiles",
    "load_policy_file",
    "resolve_folder",
    "validation_problems",
]

M = TypeVar("M", bound=BaseModel)
TENANT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""Tenant names that may name a file (anything else gets the default policy)."""
log = get_logger("cairn.policy_files")


def resolve_folder(
    configured: str | os.PathLike[str], setting: str, anchor: str | os.PathLike[str], cwd: Path | None = None
) -> Path:
    """A service's policy folder as configured in `setting`: absolute as given; a relative one from the
    working directory or a folder above it, else from a folder above `anchor` (the service's module
    file, so a checkout finds its own `infra/...` folder whatever the working directory).

    Raises FileNotFoundError naming the setting and where it looked."""
    path = Path(configured).expanduser()
    if path.is_absolute():
        return path  # whether it exists is the reader's to say
    here = (cwd or Path.cwd()).resolve()
    tried: list[Path] = []
    for base in (here, *here.parents, *Path(anchor).resolve().parents):
        candidate = base / path
        if candidate in tried:
            continue
        tried.append(candidate)
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"policy folder {str(path)!r} ({setting}) not found from {here} or above it, nor above "
        f"{Path(anchor).name}; set {setting} to an absolute path"
    )


class PolicyFileError(ValueError):
    """A policy file is unreadable, not YAML, or not a valid policy; says which file and which fields."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def validation_problems(exc: ValidationError) -> list[str]:
    """Each error of a validation as `field.path: message`."""
    out = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append(f"{where}: {message}")
    return out


def load_policy_file(path: Path, model: type[M], error: type[PolicyFileError] = PolicyFileError) -> M:
    """Read and validate one file as `model`; raises `error` (a PolicyFileError) naming the file and the
    fields at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(path, [f"not valid YAML: {' '.join(str(exc).split())}"]) from exc
    if not isinstance(data, dict):
        raise error(path, [f"must be a mapping of policy fields, got {type(data).__name__}"])
    if "name" in model.model_fields:
        data.setdefault("name", path.stem)
        if data["name"] != path.stem:
            raise error(path, [f"name: {data['name']!r} must match the file name {path.stem!r}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(path, validation_problems(exc)) from exc


@dataclass
class _Cached(Generic[M]):
    stamp: tuple[int, int]
    policy: M


class TenantPolicyFiles(Generic[M]):
    """The policies of a folder of YAML files, one per tenant plus a default, cached until a file changes."""

    def __init__(
        self,
        directory: Path,
        model: type[M],
        default: str = "default",
        error: type[PolicyFileError] = PolicyFileError,
    ) -> None:
        self.directory = directory
        self.model = model
        self.default = default
        self.error = error
        """What a file that is not a valid policy raises (a service's own PolicyFileError)."""
        self._cache: dict[str, _Cached[M]] = {}

    def path(self, name: str) -> Path:
        """The file of policy `name`."""
        return self.directory / f"{name}.yaml"

    def load(self, name: str) -> M | None:
        """Policy `name`, None when its file does not exist; raises PolicyFileError when the file has never
        been valid (a later invalid edit is logged and the last valid version returned)."""
        path = self.path(name)
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
            policy = load_policy_file(path, self.model, self.error)
        except PolicyFileError as exc:
            if cached is None:
                raise
            log.error("policy file changed but is invalid; keeping the last valid version", error=str(exc))
            cached.stamp = stamp  # report once per change
            return cached.policy
        self.keep(name, policy)
        return policy

    def keep(self, name: str, policy: M) -> None:
        """Remember `policy` as what `<name>.yaml` holds now (after writing or validating it)."""
        st = self.path(name).stat()
        self._cache[name] = _Cached((st.st_mtime_ns, st.st_size), policy)

    def forget(self, name: str) -> None:
        """Drop what is remembered of `<name>.yaml` (after deleting it)."""
        self._cache.pop(name, None)

    def policy_for(self, tenant: str) -> M | None:
        """The tenant's policy (`<tenant>.yaml`), else the default one; None when neither file exists."""
        if TENANT_FILE.match(tenant) and tenant != self.default:
            found = self.load(tenant)
            if found is not None:
                return found
        return self.load(self.default)

    def validate_all(self) -> list[M]:
        """Every policy of the folder, read and validated now; raises PolicyFileError at the first bad one."""
        return [
            policy
            for path in sorted(self.directory.glob("*.yaml"))
            if (policy := self.load(path.stem)) is not None
        ]
