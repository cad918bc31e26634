"""Fixtures of the contract tests: the schema folder, its topic files, a JSON Schema format checker."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from jsonschema import FormatChecker

from cairn_events import schemas_dir
from cairn_events.topics import TopicFile, read_topic_file

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)


@pytest.fixture(scope="session")
def schemas_root() -> Path:
    """The `schemas/` folder under test."""
    return schemas_dir()


@pytest.fixture(scope="session")
def topic_files(schemas_root: Path) -> dict[str, TopicFile]:
    """Every topic file, by topic name, with its full contents (files, planned parties)."""
    return {path.stem: read_topic_file(path) for path in sorted((schemas_root / "topics").glob("*.yaml"))}


@pytest.fixture(scope="session")
def format_checker() -> FormatChecker:
    """jsonschema's format checker plus RFC 3339 `date-time` (which it only checks with an extra package)."""
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)  # type: ignore[untyped-decorator]
    def is_rfc3339(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.match(value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return True

    return checker
