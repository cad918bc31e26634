"""The ResponseCache behaviour suite: what every store of cached answers must do.

Not collected by itself. A store runs it by subclassing `ResponseCacheBehaviour` as a `Test...` class
with a `cache` fixture giving a new, empty store: `test_inference_cache_memory.py` runs it in memory,
`test_inference_cache_postgres.py` against PostgreSQL (with and without sealing).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cairn_inference.domain.cache import CachedAnswer
from cairn_inference.domain.questions import signature
from cairn_inference.ports import ResponseCache

NOW = datetime(2026, 3, 4, 9, 15, 22, tzinfo=UTC)
TTL = timedelta(hours=1)


def answer(key: str = "exact:k1", minutes: float = 0, **fields: object) -> CachedAnswer:
    """An answer to `key` generated `minutes` after NOW, unexpired for TTL."""
    created = NOW + timedelta(minutes=minutes)
    data: dict[str, object] = {
        "key": key,
        "tenant": "acme",
        "request_id": "req-1",
        "text": "Refunds take 5 business days - ünïcode ✓",
        "finish_reason": "stop",
        "input_tokens": 42,
        "output_tokens": 9,
        "model": "cairn-qa",
        "created_at": created,
        "expires_at": created + TTL,
    }
    data.update(fields)
    return CachedAnswer(**data)  # type: ignore[arg-type]


SIG = signature("How long do refunds take?")


def asked(key: str, vector: tuple[float, ...], **fields: object) -> CachedAnswer:
    """An answer stored for the semantic cache: scope `semantic:s`, the refund question's signature."""
    return answer(key, **{"scope": "semantic:s", "vector": vector, "signature": SIG, **fields})


class ResponseCacheBehaviour:
    """What every ResponseCache promises."""

    async def test_a_stored_answer_is_found_by_key_and_tenant(self, cache: ResponseCache) -> None:
        await cache.put(answer())
        assert await cache.get("exact:k1", "acme", NOW) == answer()
        assert await cache.get("exact:k1", "acme", NOW + TTL - timedelta(seconds=1)) == answer()

    async def test_an_unknown_key_is_a_miss(self, cache: ResponseCache) -> None:
        await cache.put(answer())
        assert await cache.get("exact:other", "acme", NOW) is None

    async def test_another_tenant_never_gets_the_entry(self, cache: ResponseCache) -> None:
        await cache.put(answer())
        assert await cache.get("exact:k1", "globex", NOW) is None
        assert await cache.get("exact:k1", "acme", NOW) == answer()

    async def test_an_expired_entry_is_a_miss(self, cache: ResponseCache) -> None:
        await cache.put(answer())
        assert await cache.get("exact:k1", "acme", NOW + TTL) is None  # expired at expires_at
        assert await cache.get("exact:k1", "acme", NOW + 2 * TTL) is None

    async def test_the_first_unexpired_answer_wins(self, cache: ResponseCache) -> None:
        first = answer()
        await cache.put(first)
        await cache.put(answer(minutes=5, request_id="req-2", text="another answer"))
        assert await cache.get("exact:k1", "acme", NOW + timedelta(minutes=10)) == first

    async def test_concurrent_puts_keep_one_answer(self, cache: ResponseCache) -> None:
        answers = [answer(request_id=f"req-{i}", text=f"answer {i}") for i in range(5)]
        await asyncio.gather(*(cache.put(a) for a in answers))
        found = await cache.get("exact:k1", "acme", NOW)
        assert found in answers
        for _ in range(3):  # every later hit names the same source request
            assert await cache.get("exact:k1", "acme", NOW + timedelta(minutes=1)) == found

    async def test_an_expired_entry_is_replaced(self, cache: ResponseCache) -> None:
        await cache.put(answer())
        later = answer(minutes=90, request_id="req-2", text="a fresh answer")
        await cache.put(later)
        assert await cache.get("exact:k1", "acme", NOW + timedelta(minutes=91)) == later

    async def test_an_answer_stored_as_the_old_one_expires_replaces_it(self, cache: ResponseCache) -> None:
        await cache.put(answer())
        at_expiry = answer(minutes=60, request_id="req-2")
        await cache.put(at_expiry)
        assert await cache.get("exact:k1", "acme", NOW + TTL) == at_expiry

    async def test_erasing_a_tenant_forgets_its_entries_only(self, cache: ResponseCache) -> None:
        await cache.put(answer("exact:a1"))
        await cache.put(answer("exact:a2"))
        await cache.put(answer("exact:g1", tenant="globex"))
        assert await cache.erase_tenant("acme") == 2
        assert await cache.get("exact:a1", "acme", NOW) is None
        assert await cache.get("exact:a2", "acme", NOW) is None
        assert await cache.get("exact:g1", "globex", NOW) == answer("exact:g1", tenant="globex")
        assert await cache.erase_tenant("acme") == 0
        await cache.put(answer("exact:a1"))  # the tenant may come back: a new answer is kept
        assert await cache.get("exact:a1", "acme", NOW) == answer("exact:a1")

    async def test_purge_forgets_only_entries_expired_before_the_time(self, cache: ResponseCache) -> None:
        await cache.put(answer("exact:old-1"))
        await cache.put(answer("exact:old-2", minutes=10, tenant="globex"))
        await cache.put(answer("exact:at-cutoff", minutes=30))
        await cache.put(answer("exact:live", minutes=120))
        cutoff = NOW + timedelta(minutes=90)  # old-1 expired at +60, old-2 at +70, at-cutoff at +90
        assert await cache.purge(cutoff) == 2
        assert await cache.purge(cutoff) == 0
        assert await cache.get("exact:live", "acme", cutoff) == answer("exact:live", minutes=120)
        assert await cache.get("exact:old-1", "acme", NOW) is None  # gone, not merely expired
        assert await cache.get("exact:old-2", "globex", NOW + timedelta(minutes=10)) is None
        at_cutoff = answer("exact:at-cutoff", minutes=30)
        assert await cache.get("exact:at-cutoff", "acme", NOW + timedelta(minutes=30)) == at_cutoff
        assert await cache.purge(cutoff + timedelta(microseconds=1)) == 1  # the one expiring at the cutoff
        assert await cache.get("exact:live", "acme", cutoff) == answer("exact:live", minutes=120)

    # --- the semantic cache: the closest stored question of a scope

    async def test_nearest_gives_the_most_similar_question_of_the_scope(self, cache: ResponseCache) -> None:
        await cache.put(asked("exact:q1", (1.0, 0.0), request_id="req-q1"))
        await cache.put(asked("exact:q2", (0.6, 0.8), request_id="req-q2"))
        await cache.put(answer("exact:plain"))  # stored without a question: never a semantic match
        found = await cache.nearest("semantic:s", "acme", (0.8, 0.6), SIG, NOW)
        assert found is not None
        entry, similarity = found
        assert entry.request_id == "req-q2"
        assert entry.vector is not None
        assert entry.vector == pytest.approx((0.6, 0.8))
        assert similarity == pytest.approx(0.96, abs=1e-6)
        assert await cache.get("exact:q2", "acme", NOW) == entry  # the same entry as its exact key gives

    async def test_nearest_never_crosses_tenants_or_scopes_nor_gives_expired_entries(
        self, cache: ResponseCache
    ) -> None:
        await cache.put(asked("exact:a", (1.0, 0.0)))
        assert await cache.nearest("semantic:s", "globex", (1.0, 0.0), SIG, NOW) is None
        assert await cache.nearest("semantic:other", "acme", (1.0, 0.0), SIG, NOW) is None
        assert await cache.nearest("semantic:s", "acme", (1.0, 0.0), SIG, NOW + TTL) is None
        assert await cache.nearest("semantic:empty", "acme", (1.0, 0.0), SIG, NOW) is None

    async def test_nearest_passes_over_questions_whose_signature_disagrees(
        self, cache: ResponseCache
    ) -> None:
        await cache.put(asked("exact:close", (1.0, 0.0), request_id="req-close"))
        fortnight = signature("Refunds within 14 days?")
        await cache.put(asked("exact:far", (0.0, 1.0), request_id="req-far", signature=fortnight))
        negated = signature("How long don't refunds take?")
        assert await cache.nearest("semantic:s", "acme", (1.0, 0.0), negated, NOW) is None
        found = await cache.nearest("semantic:s", "acme", (1.0, 0.0), fortnight, NOW)
        assert found is not None
        assert found[0].request_id == "req-far"  # the only compatible one, although less similar
        assert found[1] == pytest.approx(0.0)

    async def test_erased_and_purged_entries_are_no_semantic_match(self, cache: ResponseCache) -> None:
        await cache.put(asked("exact:a", (1.0, 0.0)))
        await cache.put(asked("exact:b", (0.0, 1.0), minutes=120))
        assert await cache.erase_tenant("acme") == 2
        assert await cache.nearest("semantic:s", "acme", (1.0, 0.0), SIG, NOW) is None
        await cache.put(asked("exact:a", (1.0, 0.0)))
        assert await cache.purge(NOW + 2 * TTL) == 1
        assert await cache.nearest("semantic:s", "acme", (1.0, 0.0), SIG, NOW) is None
