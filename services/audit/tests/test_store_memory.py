"""The AuditStore behaviour suite against InMemoryAuditStore."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_audit.adapters.memory import InMemoryAuditStore
from cairn_audit.ports import AuditStore


def load_store_behaviour() -> ModuleType:
    """`store_behaviour.py` beside this file (pytest's importlib mode does not import test siblings)."""
    name = "cairn_audit_tests_store_behaviour"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("store_behaviour.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


AuditStoreBehaviour: Any = load_store_behaviour().AuditStoreBehaviour


class TestInMemoryAuditStore(AuditStoreBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def store(self) -> InMemoryAuditStore:
        return InMemoryAuditStore()

    async def tamper(self, store: AuditStore, event_id: str, **changes: Any) -> None:
        assert isinstance(store, InMemoryAuditStore)
        [index] = [i for i, r in enumerate(store.records) if r.event_id == event_id]
        store.records[index] = replace(store.records[index], **changes)
