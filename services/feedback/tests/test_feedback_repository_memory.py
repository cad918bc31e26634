"""The Repository behaviour suite against the in-memory repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_testing.suites import load_suite

RepositoryBehaviour: Any = load_suite(Path(__file__).with_name("repository_behaviour.py")).RepositoryBehaviour


class TestInMemoryRepository(RepositoryBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def repository(self) -> InMemoryRepository:
        return InMemoryRepository()
