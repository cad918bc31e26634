"""The in-memory idempotency table passes the behaviour suite."""

from __future__ import annotations

import pytest

from cairn_gateway.adapters.memory import InMemoryAnsweredRequests

from .answered_requests_behaviour import AnsweredRequestsBehaviour


class TestInMemoryAnsweredRequests(AnsweredRequestsBehaviour):
    @pytest.fixture
    def table(self) -> InMemoryAnsweredRequests:
        return InMemoryAnsweredRequests()
