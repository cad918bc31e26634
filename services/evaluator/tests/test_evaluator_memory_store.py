"""The in-memory registry and run store pass the behaviour suites."""

from __future__ import annotations

import pytest

from cairn_evaluator.adapters.memory import InMemoryRegistry, InMemoryRunStore

from .evaluator_behaviour import RegistryBehaviour, RunStoreBehaviour


class TestInMemoryRegistry(RegistryBehaviour):
    @pytest.fixture
    def registry(self) -> InMemoryRegistry:
        return InMemoryRegistry()


class TestInMemoryRunStore(RunStoreBehaviour):
    @pytest.fixture
    def run_store(self) -> InMemoryRunStore:
        return InMemoryRunStore()
