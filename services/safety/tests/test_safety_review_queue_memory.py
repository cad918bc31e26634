"""The ReviewQueue behaviour suite against InMemoryReviewQueue."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cairn_safety.adapters.memory import InMemoryReviewQueue


def load_behaviour() -> ModuleType:
    """`review_queue_behaviour.py` beside this file (pytest's importlib mode does not import test siblings)."""
    name = "cairn_safety_tests_review_queue_behaviour"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("review_queue_behaviour.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ReviewQueueBehaviour: Any = load_behaviour().ReviewQueueBehaviour


class TestInMemoryReviewQueue(ReviewQueueBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def queue(self) -> InMemoryReviewQueue:
        return InMemoryReviewQueue()
