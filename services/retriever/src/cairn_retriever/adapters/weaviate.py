"""The VectorStore port on Weaviate (production), through weaviate-client v4's async API.

Two Weaviate collections: `<prefix>Chunk` (self-provided vectors, i.e. no vectorizer: Cairn embeds;
HNSW with cosine distance; BM25 on `text`) and `<prefix>Document` (provenance, no vectors). Cairn's
own collections are a filterable `collection` property. Hybrid search is Weaviate's hybrid query
(relative-score fusion of vector and BM25, weighted by `alpha`); each hit's `similarity` is the
cosine similarity computed from the returned vector, as the port defines it.

Weaviate has no transactions: `replace_document` writes the new version's chunks first (their ids
differ from the old ones'), then deletes the old version's chunks, then writes the document. A
reader sees the old version, briefly both, then the new one — never nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cairn_bus import TransientError
from cairn_retriever.domain.models import (
    ChunkRecord,
    Document,
    DocumentState,
    SearchHit,
    SearchMode,
    SearchQuery,
)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


@contextmanager
def _transient(what: str) -> Iterator[None]:
    from weaviate.exceptions import (
        UnexpectedStatusCodeError,
        WeaviateClosedClientError,
        WeaviateConnectionError,
        WeaviateGRPCUnavailableError,
        WeaviateTimeoutError,
    )

    try:
        yield
    except (
        WeaviateConnectionError,
        WeaviateTimeoutError,
        WeaviateGRPCUnavailableError,
        WeaviateClosedClientError,
    ) as exc:
        raise TransientError(f"Weaviate {what}: {exc}") from exc
    except UnexpectedStatusCodeError as exc:
        if exc.status_code >= 500 or exc.status_code == 429:
            raise TransientError(f"Weaviate {what}: {exc}") from exc
        raise


def _version(chunk_id: str) -> str:
    return chunk_id.rsplit(".", 2)[-2] if chunk_id.count(".") >= 2 else chunk_id


def _document(p: Any) -> Document:
    ingested = p["ingested_at"]
    if isinstance(ingested, str):
        ingested = datetime.fromisoformat(ingested.replace("Z", "+00:00"))
    return Document(
        document_id=str(p["document_id"]),
        collection=str(p["collection"]),
        source_uri=str(p["source_uri"]),
        content_hash=str(p["content_hash"]),
        chunking=str(p["chunking"]),
        media_type=str(p["media_type"]),
        title=str(p["title"]) or None,
        char_count=int(p["char_count"]),
        chunk_count=int(p["chunk_count"]),
        ingested_at=ingested if ingested.tzinfo else ingested.replace(tzinfo=UTC),
    )


class WeaviateStore:
    """VectorStore on a connected `WeaviateAsyncClient`."""

    def __init__(self, client: Any, *, alpha: float = 0.5, prefix: str = "Cairn") -> None:
        self.client = client
        self.alpha = alpha
        self.chunk_collection = f"{prefix}Chunk"
        self.document_collection = f"{prefix}Document"

    @classmethod
    async def connect(
        cls, url: str, grpc_port: int = 50051, *, alpha: float = 0.5, prefix: str = "Cairn"
    ) -> WeaviateStore:
        """Connect to Weaviate at `url` (HTTP) and `grpc_port` on the same host."""
        import weaviate

        parts = urlsplit(url)
        secure = parts.scheme == "https"
        host = parts.hostname or "localhost"
        client = weaviate.use_async_with_custom(
            http_host=host,
            http_port=parts.port or (443 if secure else 80),
            http_secure=secure,
            grpc_host=host,
            grpc_port=grpc_port,
            grpc_secure=secure,
        )
        with _transient("connect"):
            await client.connect()
        return cls(client, alpha=alpha, prefix=prefix)

    async def close(self) -> None:
        """Close the client."""
        await self.client.close()

    async def migrate(self) -> None:
        """Create the two collections if missing."""
        from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances

        def field(name: str, kind: Any = DataType.TEXT) -> Any:
            text = kind == DataType.TEXT
            return Property(
                name=name,
                data_type=kind,
                index_searchable=False,
                tokenization=Tokenization.FIELD if text else None,
            )

        vectors = Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
        )
        with _transient("migrate"):
            if not await self.client.collections.exists(self.chunk_collection):
                await self.client.collections.create(
                    self.chunk_collection,
                    vector_config=vectors,
                    properties=[
                        Property(name="text", data_type=DataType.TEXT, tokenization=Tokenization.WORD),
                        field("chunk_id"),
                        field("document_id"),
                        field("collection"),
                        field("source_uri"),
                        field("content_hash"),
                        field("version"),
                        field("ordinal", DataType.INT),
                        field("char_start", DataType.INT),
                        field("char_end", DataType.INT),
                    ],
                )
            if not await self.client.collections.exists(self.document_collection):
                await self.client.collections.create(
                    self.document_collection,
                    vector_config=Configure.Vectors.self_provided(),
                    properties=[
                        field("document_id"),
                        field("collection"),
                        field("source_uri"),
                        field("content_hash"),
                        field("chunking"),
                        field("media_type"),
                        field("title"),
                        field("char_count", DataType.INT),
                        field("chunk_count", DataType.INT),
                        field("ingested_at", DataType.DATE),
                    ],
                )

    @property
    def _chunks(self) -> Any:
        return self.client.collections.get(self.chunk_collection)

    @property
    def _documents(self) -> Any:
        return self.client.collections.get(self.document_collection)

    async def _find_documents(self, source_uri: str, collection: str | None) -> list[Any]:
        from weaviate.classes.query import Filter

        where = Filter.by_property("source_uri").equal(source_uri)
        if collection is not None:
            where = where & Filter.by_property("collection").equal(collection)
        with _transient("read documents"):
            found = await self._documents.query.fetch_objects(filters=where, limit=1000)
        return list(found.objects)

    async def document_state(self, collection: str, source_uri: str) -> DocumentState | None:
        found = await self._find_documents(source_uri, collection)
        if not found:
            return None
        props = found[0].properties
        return DocumentState(str(props["content_hash"]), str(props["chunking"]))

    async def replace_document(self, document: Document, chunks: Sequence[ChunkRecord]) -> None:
        from weaviate.classes.data import DataObject
        from weaviate.classes.query import Filter
        from weaviate.util import generate_uuid5

        version = _version(chunks[0].chunk_id) if chunks else "none"
        objects = [
            DataObject(
                uuid=generate_uuid5(c.chunk_id),
                vector=list(c.embedding),
                properties={
                    "text": c.text,
                    "chunk_id": c.chunk_id,
                    "document_id": document.document_id,
                    "collection": document.collection,
                    "source_uri": document.source_uri,
                    "content_hash": c.content_hash,
                    "version": version,
                    "ordinal": c.ordinal,
                    "char_start": c.char_start,
                    "char_end": c.char_end,
                },
            )
            for c in chunks
        ]
        with _transient("replace document"):
            if objects:
                result = await self._chunks.data.insert_many(objects)
                if result.has_errors:
                    raise RuntimeError(f"Weaviate rejected chunks: {list(result.errors.values())[:3]}")
            await self._chunks.data.delete_many(
                where=Filter.by_property("document_id").equal(document.document_id)
                & Filter.by_property("version").not_equal(version)
            )
            result = await self._documents.data.insert_many(
                [
                    DataObject(
                        uuid=generate_uuid5(document.document_id),
                        properties={
                            "document_id": document.document_id,
                            "collection": document.collection,
                            "source_uri": document.source_uri,
                            "content_hash": document.content_hash,
                            "chunking": document.chunking,
                            "media_type": document.media_type,
                            "title": document.title or "",
                            "char_count": document.char_count,
                            "chunk_count": document.chunk_count,
                            "ingested_at": document.ingested_at,
                        },
                    )
                ]
            )
            if result.has_errors:
                raise RuntimeError(f"Weaviate rejected the document: {list(result.errors.values())}")

    async def delete_document(self, source_uri: str, collection: str | None = None) -> int:
        from weaviate.classes.query import Filter

        found = await self._find_documents(source_uri, collection)
        with _transient("delete document"):
            for obj in found:
                doc_id = obj.properties["document_id"]
                await self._chunks.data.delete_many(where=Filter.by_property("document_id").equal(doc_id))
                await self._documents.data.delete_by_id(obj.uuid)
        return len(found)

    async def get_document(self, document_id: str) -> Document | None:
        from weaviate.classes.query import Filter

        with _transient("read document"):
            found = await self._documents.query.fetch_objects(
                filters=Filter.by_property("document_id").equal(document_id), limit=1
            )
        return _document(found.objects[0].properties) if found.objects else None

    async def list_documents(self, collection: str | None = None) -> list[Document]:
        out = []
        with _transient("list documents"):
            async for obj in self._documents.iterator():
                p = obj.properties
                if collection is not None and p["collection"] != collection:
                    continue
                out.append(_document(p))
        return sorted(out, key=lambda d: (d.collection, d.source_uri))

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        from weaviate.classes.query import Filter, HybridFusion, MetadataQuery

        collections = query.collections
        where = Filter.by_property("collection").contains_any(list(collections)) if collections else None
        with _transient("search"):
            if query.mode is SearchMode.VECTOR:
                found = await self._chunks.query.near_vector(
                    near_vector=list(query.embedding),
                    limit=query.k,
                    filters=where,
                    include_vector=True,
                    return_metadata=MetadataQuery(distance=True),
                )
            else:
                found = await self._chunks.query.hybrid(
                    query=query.text,
                    vector=list(query.embedding),
                    alpha=self.alpha,
                    limit=max(query.depth, query.k),
                    query_properties=["text"],
                    fusion_type=HybridFusion.RELATIVE_SCORE,
                    filters=where,
                    include_vector=True,
                    return_metadata=MetadataQuery(score=True),
                )
        hits = []
        for rank, obj in enumerate(found.objects, start=1):
            vector = obj.vector.get("default") if isinstance(obj.vector, dict) else obj.vector
            similarity = _cosine(query.embedding, vector) if vector else 0.0
            if query.min_similarity is not None and similarity < query.min_similarity:
                continue
            p = obj.properties
            vector_mode = query.mode is SearchMode.VECTOR
            hits.append(
                SearchHit(
                    chunk_id=str(p["chunk_id"]),
                    document_id=str(p["document_id"]),
                    collection=str(p["collection"]),
                    source_uri=str(p["source_uri"]),
                    text=str(p["text"]),
                    content_hash=str(p["content_hash"]),
                    ordinal=int(p["ordinal"]),
                    similarity=similarity,
                    fused=similarity if vector_mode else float(obj.metadata.score or 0.0),
                    vector_rank=rank if vector_mode else None,
                )
            )
            if len(hits) == query.k:
                break
        return hits
