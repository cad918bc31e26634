"""The PriorStore behaviour suite: one abstract class, run against the in-memory and the PostgreSQL
adapter, so the fake cannot drift from the real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cairn_retriever.domain.priors import ChunkKey, ServedChunk, ServedContext, Votes
from cairn_retriever.ports import PriorStore

NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
A, B, C = ChunkKey("doc-a", "sha256:1"), ChunkKey("doc-a", "sha256:2"), ChunkKey("doc-b", "sha256:1")


def served(request_id: str, tenant: str = "acme", at: datetime = NOW) -> ServedContext:
    first = ServedChunk("doc-a", "sha256:1", "kb://a")
    return ServedContext(
        tenant, request_id, (first,), (first, ServedChunk("doc-b", "sha256:1", "kb://b")), at
    )


class PriorStoreBehaviour:
    """Subclasses provide a `priors` fixture: an empty PriorStore."""

    async def test_a_served_request_is_remembered_per_tenant(self, priors: PriorStore) -> None:
        await priors.record_served(served("req-1"))
        assert await priors.served("acme", "req-1") == served("req-1")
        assert await priors.served("other", "req-1") is None
        assert await priors.served("acme", "req-2") is None

    async def test_a_request_served_again_keeps_its_first_record(self, priors: PriorStore) -> None:
        await priors.record_served(served("req-1"))
        await priors.record_served(served("req-1", at=NOW + timedelta(hours=1)))
        found = await priors.served("acme", "req-1")
        assert found is not None
        assert found.served_at == NOW

    async def test_old_records_are_purged(self, priors: PriorStore) -> None:
        await priors.record_served(served("old", at=NOW - timedelta(days=31)))
        await priors.record_served(served("new", at=NOW))
        assert await priors.purge_served(NOW - timedelta(days=30)) == 1
        assert await priors.served("acme", "old") is None
        assert await priors.served("acme", "new") is not None

    async def test_votes_add_up_per_tenant_and_chunk(self, priors: PriorStore) -> None:
        await priors.add_votes("acme", {A: Votes(down=1), B: Votes(up=1)})
        await priors.add_votes("acme", {A: Votes(up=1, down=1)})
        await priors.add_votes("other", {A: Votes(up=5)})
        assert await priors.votes("acme", [A, B, C]) == {A: Votes(up=1, down=2), B: Votes(up=1)}
        assert await priors.votes("other", [A]) == {A: Votes(up=5)}
        assert await priors.votes("acme", []) == {}
        await priors.add_votes("acme", {})
