"""Policies from YAML files: `<policy_dir>/<tenant>.yaml`, falling back to `default.yaml`.

Files are validated on load; an error names the file and the field (`input.toxicity.thresholds.0.action`).
A file is read again when it changes on disk, so a policy edit applies without a restart; an edit
that does not validate is refused (logged) and the last valid version stays in force.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from cairn_bus.policy_files import TenantPolicyFiles, load_policy_file, resolve_folder
from cairn_observability import get_logger
from cairn_safety.domain.policy import Policy, PolicyError

__all__ = ["DEFAULT_POLICY", "PolicyError", "PolicyFiles", "load_policy", "resolve_policy_dir"]

DEFAULT_POLICY = "default"
log = get_logger("cairn.safety.policies")


def resolve_policy_dir(configured: str | os.PathLike[str], cwd: Path | None = None) -> Path:
    """The policy folder (`CAIRN_POLICY_DIR`): absolute as given; a relative one from the working
    directory, else from the repository root (`cairn_bus.policy_files.resolve_folder`)."""
    return resolve_folder(configured, "CAIRN_POLICY_DIR", __file__, cwd)


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file; raises PolicyError naming the file and fields at fault."""
    return load_policy_file(path, Policy, PolicyError)


class PolicyFiles(TenantPolicyFiles[Policy]):
    """PolicySource on a folder of YAML files, cached and re-read when a file changes."""

    def __init__(self, directory: Path, default: str = DEFAULT_POLICY) -> None:
        super().__init__(directory, Policy, default, PolicyError)

    def policy_for(self, tenant: str) -> Policy:
        """The tenant's policy (`<tenant>.yaml`), else the default one; raises PolicyError if neither loads."""
        found = super().policy_for(tenant)
        if found is None:
            raise PolicyError(self.path(self.default), ["the default policy file is missing"])
        return found

    def policies(self) -> list[Policy]:
        """Every policy of the folder, by name (validated; see `validate_all`)."""
        return sorted(self.validate_all(), key=lambda p: p.name)

    def put(self, policy: Policy) -> Policy | None:
        """Write `policy` to `<name>.yaml` (a temporary file renamed over it, so a screening never
        reads half a file); the policy it replaced, if any. Comments of the old file are not kept."""
        path = self.path(policy.name)
        try:
            previous = self.load(policy.name)
        except PolicyError:
            previous = None
        body = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(body, encoding="utf-8")
        os.replace(partial, path)
        self.keep(policy.name, load_policy(path))
        log.info("policy written", policy=policy.ref, file=str(path))
        return previous

    def remove(self, name: str) -> None:
        """Delete `<name>.yaml` (never the default policy's file)."""
        if name == self.default:
            raise ValueError("the default policy cannot be removed")
        self.path(name).unlink(missing_ok=True)
        self.forget(name)

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
        if not any(p.name == self.default for p in policies) and not self.path(self.default).exists():
            problems.append(f"{self.default}.yaml: the default policy file is missing")
        if problems:
            raise PolicyError(self.directory, problems)
        for p in policies:
            self.keep(p.name, p)
        return policies
