"""The ReviewQueue behaviour suite against InMemoryReviewQueue."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_safety.adapters.memory import InMemoryReviewQueue
from cairn_testing.suites import load_suite


def load_behaviour() -> ModuleType:
    """The shared behaviour suite (loaded by path: test files cannot import each other)."""
    return load_suite(Path(__file__).with_name("review_queue_behaviour.py"))


ReviewQueueBehaviour: Any = load_behaviour().ReviewQueueBehaviour


class TestInMemoryReviewQueue(ReviewQueueBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def queue(self) -> InMemoryReviewQueue:
        return InMemoryReviewQueue()

    async def erase_tenant(self, queue: InMemoryReviewQueue, tenant: str) -> None:
        queue.erase(tenant)
