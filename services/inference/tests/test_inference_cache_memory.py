"""The in-memory response cache: the behaviour suite, and its capacity."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn_inference.adapters.cache_memory import InMemoryResponseCache
from cairn_testing.suites import load_suite

behaviour = load_suite(Path(__file__).with_name("cache_behaviour.py"))
ResponseCacheBehaviour: Any = behaviour.ResponseCacheBehaviour
answer = behaviour.answer
NOW = behaviour.NOW


class TestInMemoryResponseCache(ResponseCacheBehaviour):  # type: ignore[misc]
    @pytest.fixture
    def cache(self) -> InMemoryResponseCache:
        return InMemoryResponseCache()


async def test_past_capacity_the_oldest_entries_are_dropped() -> None:
    cache = InMemoryResponseCache(capacity=3)
    for i in range(5):
        await cache.put(answer(f"exact:k{i}"))
    assert len(cache.entries) == 3
    assert [await cache.get(f"exact:k{i}", "acme", NOW) is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]


async def test_a_replaced_entry_counts_as_the_newest() -> None:
    cache = InMemoryResponseCache(capacity=2)
    await cache.put(answer("exact:a"))
    await cache.put(answer("exact:b", minutes=1))
    await cache.put(answer("exact:a", minutes=61, request_id="req-2"))  # a's first answer expired: replaced
    await cache.put(answer("exact:c", minutes=62))  # drops b, now the oldest
    later = NOW + behaviour.TTL
    assert await cache.get("exact:b", "acme", NOW + timedelta(minutes=2)) is None
    replaced = await cache.get("exact:a", "acme", later)
    assert replaced is not None
    assert replaced.request_id == "req-2"
    assert await cache.get("exact:c", "acme", later) is not None


async def test_a_kept_first_answer_does_not_count_as_stored_again() -> None:
    cache = InMemoryResponseCache(capacity=2)
    await cache.put(answer("exact:a"))
    await cache.put(answer("exact:b"))
    await cache.put(answer("exact:a", request_id="req-2"))  # ignored: a's first answer is unexpired
    await cache.put(answer("exact:c"))  # drops a, still the oldest stored
    assert await cache.get("exact:a", "acme", NOW) is None
    assert await cache.get("exact:b", "acme", NOW) is not None


def test_the_capacity_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="capacity"):
        InMemoryResponseCache(capacity=0)
