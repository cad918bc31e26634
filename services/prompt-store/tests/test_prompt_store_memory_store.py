"""The PromptStore behaviour suite against the in-memory store."""

from __future__ import annotations

import pytest

from cairn_prompt_store.adapters.memory import InMemoryClaims, InMemoryPromptStore

from .conftest import claim_then_fail
from .prompt_store_behaviour import PromptStoreBehaviour


class TestInMemoryPromptStore(PromptStoreBehaviour):
    @pytest.fixture
    def store(self) -> InMemoryPromptStore:
        return InMemoryPromptStore()


async def test_in_memory_claims_behave_the_same() -> None:
    claims = InMemoryClaims()
    assert await claim_then_fail(claims, "c", "e1") is True
    async with claims.once("c", "e1") as first:
        assert first is True
    async with claims.once("c", "e1") as again:
        assert again is False
