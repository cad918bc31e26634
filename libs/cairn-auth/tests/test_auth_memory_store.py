"""The KeyStore behaviour suite against the in-memory store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cairn_auth import InMemoryKeyStore
from cairn_testing.suites import load_suite

suite: Any = load_suite(Path(__file__).with_name("key_store_behaviour.py"))


class TestInMemoryKeyStore(suite.KeyStoreBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def store(self) -> InMemoryKeyStore:
        return InMemoryKeyStore()
