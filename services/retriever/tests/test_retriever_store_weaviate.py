"""The VectorStore behaviour suite against Weaviate, when CAIRN_WEAVIATE_URL names one."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from .conftest import load_sibling

behaviour = load_sibling("store_behaviour")
WEAVIATE_URL = os.environ.get("CAIRN_WEAVIATE_URL")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not WEAVIATE_URL, reason="CAIRN_WEAVIATE_URL is not set: no Weaviate to test against"),
]


class TestWeaviateStore(behaviour.VectorStoreBehaviour):  # type: ignore[name-defined,misc]
    reports_ranks = False  # Weaviate fuses inside its hybrid query

    @pytest.fixture
    async def store(self) -> AsyncIterator[object]:
        from cairn_retriever.adapters.weaviate import WeaviateStore

        assert WEAVIATE_URL is not None
        port = int(os.environ.get("CAIRN_WEAVIATE_GRPC_PORT", "50051"))
        store = await WeaviateStore.connect(WEAVIATE_URL, port, prefix=f"CairnTest{uuid.uuid4().hex[:8]}")
        await store.migrate()
        try:
            yield store
        finally:
            await store.client.collections.delete([store.chunk_collection, store.document_collection])
            await store.close()
