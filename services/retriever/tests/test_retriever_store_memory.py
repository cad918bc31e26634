"""The VectorStore behaviour suite against InMemoryVectorStore."""

from __future__ import annotations

import pytest

from cairn_retriever.adapters.memory import InMemoryVectorStore
from cairn_retriever.ports import VectorStore

from .conftest import load_sibling

behaviour = load_sibling("store_behaviour")


class TestInMemoryVectorStore(behaviour.VectorStoreBehaviour):  # type: ignore[name-defined,misc]
    @pytest.fixture
    def store(self) -> VectorStore:
        return InMemoryVectorStore()


async def test_an_outage_raises_a_connection_error() -> None:
    store = InMemoryVectorStore(down=True)
    with pytest.raises(ConnectionError):
        await store.list_documents()
