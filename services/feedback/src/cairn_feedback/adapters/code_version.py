"""The version of the curation code recorded in manifests: the repository's git commit, else the package's."""

from __future__ import annotations

import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path


@cache
def code_version() -> str:
    """`git:<commit>` of the checkout this package runs from (`+dirty` with local changes), else
    `cairn-feedback==<version>`."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", str(here.parents[1])],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, status = "", ""
    if len(commit) == 40:
        return f"git:{commit}" + ("+dirty" if status else "")
    try:
        return f"cairn-feedback=={package_version('cairn-feedback')}"
    except PackageNotFoundError:
        return "cairn-feedback==unknown"
