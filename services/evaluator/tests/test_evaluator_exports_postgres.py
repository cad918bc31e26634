"""The read port the operator CLI's report uses: groundedness scores of live answers in a window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cairn_evaluator.adapters.pg_online import PostgresOnlineStore
from cairn_evaluator.adapters.pg_schema import migrate
from cairn_evaluator.exports import OnlineGroundedness

from .conftest import T0
from .online_behaviour import response

pytestmark = pytest.mark.integration


async def test_groundedness_is_empty_before_the_evaluator_made_its_tables(pool: Any) -> None:
    assert await OnlineGroundedness(pool).groundedness(T0, T0 + timedelta(days=1)) == []


async def test_groundedness_lists_scored_answers_in_the_window_oldest_first(pool: Any) -> None:
    await migrate(pool)
    store = PostgresOnlineStore(pool)
    await store.record_response(response(1, 30, groundedness=0.5))
    await store.record_response(response(2, 10, model=None, groundedness=0.25))
    await store.record_response(response(3, 20, groundedness=None))  # not scored
    await store.record_response(response(4, -1))  # before the window
    await store.record_response(response(5, 60))  # at its end: outside
    await store.record_response(response(6, 0, groundedness=1.0))  # at its start: inside
    rows = await OnlineGroundedness(pool).groundedness(T0, T0 + timedelta(hours=1))
    assert rows == [
        (T0, "cairn-qa", 1.0),
        (T0 + timedelta(minutes=10), "unknown", 0.25),
        (T0 + timedelta(minutes=30), "cairn-qa", 0.5),
    ]
