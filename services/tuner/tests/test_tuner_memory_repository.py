"""The behaviour suite against the in-memory repository."""

from __future__ import annotations

import pytest

from cairn_tuner.adapters.memory import InMemoryJobRepository

from .tuner_repository_behaviour import JobRepositoryBehaviour


class TestInMemoryJobRepository(JobRepositoryBehaviour):
    @pytest.fixture
    def repo(self) -> InMemoryJobRepository:
        return InMemoryJobRepository()
