"""The version of the training code recorded with every adapter: the git commit, else the package version."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from cairn_tuner.settings import find_repo_root


def detect_code_version(repo: Path | None = None) -> str:
    """`git:<commit>` of the repository the tuner runs from; `cairn-tuner <version>` outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo or find_repo_root(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        result = None
    commit = result.stdout.strip() if result is not None and result.returncode == 0 else ""
    if commit:
        return f"git:{commit}"
    try:
        return f"cairn-tuner {metadata.version('cairn-tuner')}"
    except metadata.PackageNotFoundError:
        return "cairn-tuner unknown"
