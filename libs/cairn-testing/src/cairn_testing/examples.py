"""The schema examples of `schemas/`, for parametrised tests and handler fixtures."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn_events import Event, event_class, schemas_dir


@dataclass(frozen=True)
class SchemaExample:
    """One example file: its event type, path and payload."""

    event_type: str
    path: Path
    payload: dict[str, Any]

    def event(self) -> Event:
        """The payload parsed into its model."""
        return event_class(self.event_type).model_validate(self.payload)


def schema_examples(event_type: str | None = None) -> list[SchemaExample]:
    """Every example under schemas/<type>/examples/ (`v1` examples of `cairn.<thing>`), sorted by path."""
    out = []
    for path in sorted(schemas_dir().glob("*/examples/*.json")):
        family = path.parent.parent.name
        found = re.match(r"v[1-9][0-9]*", path.stem)  # `v1-full.json`: version, then the example's name
        version = found.group(0) if found else "v1"
        etype = f"{family}.{version}"
        if event_type is None or etype == event_type:
            out.append(SchemaExample(etype, path, json.loads(path.read_text())))
    return out
