"""The PriorStore behaviour suite against the in-memory and the PostgreSQL adapter."""

from __future__ import annotations

from typing import Any

import pytest

from cairn_retriever.adapters.memory_priors import InMemoryPriorStore
from cairn_retriever.adapters.priors_postgres import PostgresPriorStore

from .conftest import load_sibling

behaviour = load_sibling("prior_store_behaviour")


class TestInMemoryPriorStore(behaviour.PriorStoreBehaviour):  # type: ignore[name-defined,misc]
    @pytest.fixture
    def priors(self) -> InMemoryPriorStore:
        return InMemoryPriorStore()


@pytest.mark.integration
class TestPostgresPriorStore(behaviour.PriorStoreBehaviour):  # type: ignore[name-defined,misc]
    @pytest.fixture
    async def priors(self, pool: Any) -> PostgresPriorStore:
        store = PostgresPriorStore(pool)
        await store.migrate()
        await store.migrate()  # idempotent
        return store


@pytest.mark.integration
async def test_votes_and_the_inbox_claim_commit_together(pool: Any) -> None:
    from cairn_bus import PostgresInbox

    store = PostgresPriorStore(pool)
    await store.migrate()
    inbox = PostgresInbox(pool)
    await inbox.migrate()
    key = behaviour.A

    async def vote_then_fail() -> None:
        async with inbox.once("retriever-feedback", "acme/fb-1") as claim:
            await store.add_votes("acme", {key: behaviour.Votes(down=1)}, conn=claim.conn)
            raise RuntimeError("the handler failed after voting")

    with pytest.raises(RuntimeError):
        await vote_then_fail()
    assert await store.votes("acme", [key]) == {}
    async with inbox.once("retriever-feedback", "acme/fb-1") as claim:
        assert claim
        await store.add_votes("acme", {key: behaviour.Votes(down=1)}, conn=claim.conn)
    assert await store.votes("acme", [key]) == {key: behaviour.Votes(down=1)}
