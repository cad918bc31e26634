"""Where the schema files live, and where each event type's files are within them."""

from __future__ import annotations

import os
from pathlib import Path

from cairn_events.registry import schema_family, schema_version

__all__ = [
    "SCHEMAS_DIR_ENV",
    "avro_schema_path",
    "example_paths",
    "examples_dir",
    "json_schema_path",
    "schemas_dir",
]

SCHEMAS_DIR_ENV = "CAIRN_SCHEMAS_DIR"


def schemas_dir() -> Path:
    """The `schemas/` folder: `$CAIRN_SCHEMAS_DIR` if set, else the repository's, found above this package.

    Raises FileNotFoundError when neither exists (an installed wheel outside the repository
    must set `CAIRN_SCHEMAS_DIR`).
    """
    configured = os.environ.get(SCHEMAS_DIR_ENV)
    if configured:
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "schemas"
        if (candidate / "topics").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no schemas/ folder above {Path(__file__).resolve().parent}; set {SCHEMAS_DIR_ENV}"
    )


def _event_dir(event_type: str, root: Path | None) -> Path:
    return (root if root is not None else schemas_dir()) / schema_family(event_type)


def json_schema_path(event_type: str, root: Path | None = None) -> Path:
    """`schemas/<type-without-version>/v<N>.schema.json`."""
    return _event_dir(event_type, root) / f"v{schema_version(event_type)}.schema.json"


def avro_schema_path(event_type: str, root: Path | None = None) -> Path:
    """`schemas/<type-without-version>/v<N>.avsc`."""
    return _event_dir(event_type, root) / f"v{schema_version(event_type)}.avsc"


def examples_dir(event_type: str, root: Path | None = None) -> Path:
    """`schemas/<type-without-version>/examples/`: hand-written example payloads of every version."""
    return _event_dir(event_type, root) / "examples"


def example_paths(event_type: str, root: Path | None = None) -> list[Path]:
    """The example payloads of one event type and version: `examples/v<N>-<case>.json`, sorted."""
    return sorted(examples_dir(event_type, root).glob(f"v{schema_version(event_type)}-*.json"))
