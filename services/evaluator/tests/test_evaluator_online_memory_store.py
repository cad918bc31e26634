"""The in-memory online store passes the behaviour suite."""

from __future__ import annotations

import pytest

from cairn_evaluator.adapters.memory_online import InMemoryOnlineStore

from .online_behaviour import OnlineStoreBehaviour


class TestInMemoryOnlineStore(OnlineStoreBehaviour):
    @pytest.fixture
    def online_store(self) -> InMemoryOnlineStore:
        return InMemoryOnlineStore()
