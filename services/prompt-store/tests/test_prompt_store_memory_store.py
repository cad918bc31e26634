"""The PromptStore behaviour suite against the in-memory store."""

from __future__ import annotations

import pytest

from cairn_prompt_store.adapters.memory import InMemoryPromptStore

from .prompt_store_behaviour import PromptStoreBehaviour


class TestInMemoryPromptStore(PromptStoreBehaviour):
    @pytest.fixture
    def store(self) -> InMemoryPromptStore:
        return InMemoryPromptStore()
