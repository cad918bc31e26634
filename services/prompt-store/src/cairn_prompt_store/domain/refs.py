"""Prompt references: `name` (the production label), `name@label` or `name:version`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cairn_events.base import PROMPT_NAME_PATTERN, PROMPT_REF_PATTERN
from cairn_prompt_store.domain.errors import InvalidReferenceError

PRODUCTION = "production"
"""The label a bare prompt name resolves through."""

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""A label name (as in references); labels made only of digits are refused to keep `@1` and `:1` apart."""

_REF = re.compile(PROMPT_REF_PATTERN)
_NAME = re.compile(PROMPT_NAME_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)


@dataclass(frozen=True)
class PromptRef:
    """A parsed reference: a name and either a label or a version (exactly one is set)."""

    name: str
    label: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.label}"


def parse_ref(text: str) -> PromptRef:
    """Parse a reference; a bare name means its `production` label. Raises InvalidReferenceError."""
    if not _REF.match(text):
        raise InvalidReferenceError(
            f"invalid prompt reference {text!r}: expected NAME, NAME@LABEL or NAME:VERSION"
        )
    if "@" in text:
        name, label = text.split("@", 1)
        return PromptRef(name, label=label)
    if ":" in text:
        name, version = text.rsplit(":", 1)
        return PromptRef(name, version=int(version))
    return PromptRef(text, label=PRODUCTION)


def check_name(name: str) -> str:
    """`name` when it is a valid prompt name; raises InvalidReferenceError otherwise."""
    if not _NAME.match(name):
        raise InvalidReferenceError(f"invalid prompt name {name!r}")
    return name


def check_label(label: str) -> str:
    """`label` when it is a valid label name; raises InvalidReferenceError otherwise."""
    if not _LABEL.match(label) or label.isdigit():
        raise InvalidReferenceError(
            f"invalid label {label!r}: 1-64 of letters, digits and `._-`, starting with a letter or "
            "digit, not only digits"
        )
    return label
