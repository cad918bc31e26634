"""Shared fixtures of the prompt store's tests: the seed prompt, specs, requests and records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import RawRecord
from cairn_bus.publisher import OutgoingMessage
from cairn_events import RequestSubmittedV1
from cairn_prompt_store.domain.prompt_file import load_prompt
from cairn_prompt_store.domain.spec import PromptSpec

QA_FILE = Path(__file__).resolve().parents[3] / "infra" / "prompts" / "qa.yaml"
NOW = datetime(2025, 3, 4, 9, 15, 22, 532000, tzinfo=UTC)


@pytest.fixture
def qa_spec() -> PromptSpec:
    """The seed prompt `infra/prompts/qa.yaml`."""
    return load_prompt(QA_FILE.read_text(), str(QA_FILE))


def spec(name: str = "greet", **fields: Any) -> PromptSpec:
    """A small spec: a system turn and a user turn using `who` (required) and `mood` (optional)."""
    data: dict[str, Any] = {
        "name": name,
        "messages": [
            {"role": "system", "content": "Be {{ mood }}."},
            {"role": "user", "content": "Say hello to {{ who }}."},
        ],
        "variables": [
            {"name": "who", "required": True},
            {"name": "mood", "default": "kind"},
        ],
    }
    data.update(fields)
    return PromptSpec.model_validate(data)


def request(prompt: str = "qa", request_id: str = "req-1", **fields: Any) -> RequestSubmittedV1:
    """A request as it reads off the wire (JSON-mode data validated by the model)."""
    data: dict[str, Any] = {
        "request_id": request_id,
        "prompt": prompt,
        "submitted_at": "2025-03-04T09:15:22Z",
    }
    data.update(fields)
    return RequestSubmittedV1.model_validate(data)


def as_record(message: OutgoingMessage, offset: int = 0, partition: int = 0) -> RawRecord:
    """What a consumer would read after `message` was produced."""
    return RawRecord(
        message.topic, partition, offset, message.value, message.key, list(message.headers), 1_741_079_722_000
    )
