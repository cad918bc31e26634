"""Both shadow stores pass the same behaviour suite (PostgreSQL against the local stack)."""

from __future__ import annotations

from typing import Any

import pytest

from cairn_evaluator.adapters.memory_shadow import InMemoryShadowStore
from cairn_evaluator.adapters.pg_schema import migrate
from cairn_evaluator.adapters.pg_shadow import PostgresShadowStore

from .shadow_behaviour import ShadowStoreBehaviour


class TestInMemoryShadowStore(ShadowStoreBehaviour):
    @pytest.fixture
    def shadow_store(self) -> InMemoryShadowStore:
        return InMemoryShadowStore()


@pytest.fixture
async def pool(pool: Any) -> Any:
    """The shared fresh-database pool, with the evaluator's tables."""
    await migrate(pool)
    return pool


@pytest.mark.integration
class TestPostgresShadowStore(ShadowStoreBehaviour):
    @pytest.fixture
    def shadow_store(self, pool: Any) -> PostgresShadowStore:
        return PostgresShadowStore(pool)
