"""The in-memory spend ledger: the behaviour suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cairn_inference.adapters.budget_memory import InMemorySpendLedger
from cairn_testing.suites import load_suite

behaviour = load_suite(Path(__file__).with_name("budget_behaviour.py"))
SpendLedgerBehaviour: Any = behaviour.SpendLedgerBehaviour


class TestInMemorySpendLedger(SpendLedgerBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def ledger(self) -> InMemorySpendLedger:
        return InMemorySpendLedger()
