"""The AuditStore behaviour suite against InMemoryAuditStore."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_audit.adapters.memory import InMemoryAuditStore
from cairn_audit.ports import AuditStore
from cairn_testing.suites import load_suite


def load_store_behaviour() -> ModuleType:
    """The shared behaviour suite (loaded by path: test files cannot import each other)."""
    return load_suite(Path(__file__).with_name("store_behaviour.py"))


AuditStoreBehaviour: Any = load_store_behaviour().AuditStoreBehaviour


class TestInMemoryAuditStore(AuditStoreBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def store(self) -> InMemoryAuditStore:
        return InMemoryAuditStore()

    async def tamper(self, store: AuditStore, event_id: str, **changes: Any) -> None:
        assert isinstance(store, InMemoryAuditStore)
        [index] = [i for i, r in enumerate(store.records) if r.event_id == event_id]
        store.records[index] = replace(store.records[index], **changes)
