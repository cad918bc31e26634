"""Ingestion against the real stack: pgvector in a fresh database, and an S3 prefix on the local store."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cairn_retriever.adapters.memory import HashingEmbedder
from cairn_retriever.adapters.pgvector import PgVectorStore
from cairn_retriever.adapters.sources import FileSource, S3Source, extract_text
from cairn_retriever.bootstrap import open_store
from cairn_retriever.domain.models import SearchMode, SearchQuery
from cairn_retriever.ingest import ChunkingConfig, DocumentStatus, Ingestor
from cairn_retriever.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_store(fresh_database: str) -> AsyncIterator[PgVectorStore]:
    async with open_store(Settings(postgres_dsn=fresh_database)) as store:
        assert isinstance(store, PgVectorStore)
        yield store


def make_ingestor(store: PgVectorStore) -> Ingestor:
    return Ingestor(HashingEmbedder(), store, extract_text, ChunkingConfig("tokens", 40, 8), batch_size=8)


async def chunk_rows(store: PgVectorStore, uri: str) -> list[tuple[str, str]]:
    rows = await store.pool.fetch(
        "SELECT c.chunk_id, c.text FROM retriever_chunks c JOIN retriever_documents d USING (document_id) "
        "WHERE d.source_uri = $1 ORDER BY c.ordinal",
        uri,
    )
    return [(r["chunk_id"], r["text"]) for r in rows]


async def test_unchanged_files_are_a_no_op_and_changed_ones_are_replaced(
    tmp_path: Path, pg_store: PgVectorStore
) -> None:
    (tmp_path / "a.md").write_text("# Alpha\n\n" + "Alpha paragraph about generators and yield. " * 12)
    (tmp_path / "b.txt").write_text("Bravo text about the pass statement. " * 8)
    ing = make_ingestor(pg_store)
    first = await ing.ingest(FileSource(tmp_path), "kb")
    assert first.count(DocumentStatus.ADDED) == 2
    a_uri = (tmp_path / "a.md").resolve().as_uri()
    before_docs = await pg_store.list_documents()
    before_chunks = await chunk_rows(pg_store, a_uri)
    assert len(before_chunks) > 1

    second = await ing.ingest(FileSource(tmp_path), "kb")
    assert second.count(DocumentStatus.UNCHANGED) == 2
    assert await pg_store.list_documents() == before_docs  # same rows, same ingestion times
    assert await chunk_rows(pg_store, a_uri) == before_chunks

    (tmp_path / "a.md").write_text("# Alpha\n\nA shorter alpha about coroutines.")
    third = await ing.ingest(FileSource(tmp_path), "kb")
    assert {o.uri: o.status for o in third.outcomes}[a_uri] is DocumentStatus.REPLACED
    after = await chunk_rows(pg_store, a_uri)
    assert [t for _, t in after] == ["# Alpha\n\nA shorter alpha about coroutines."]
    assert not {i for i, _ in after} & {i for i, _ in before_chunks}
    assert await pg_store.count_chunks() == len(after) + len(
        await chunk_rows(pg_store, (tmp_path / "b.txt").resolve().as_uri())
    )
    embedder = HashingEmbedder()
    hits = await pg_store.search(
        SearchQuery("coroutines", embedder.embed_query("coroutines"), 3, SearchMode.HYBRID, "kb")
    )
    assert hits[0].source_uri == a_uri


@pytest.fixture
def s3_bucket(local_stack: dict[str, str]) -> tuple[object, str]:
    from minio import Minio

    client = Minio(
        local_stack["CAIRN_S3_ENDPOINT"],
        access_key=local_stack["CAIRN_S3_ACCESS_KEY"],
        secret_key=local_stack["CAIRN_S3_SECRET_KEY"],
        secure=False,
    )
    bucket = f"retriever-test-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    yield client, bucket
    for obj in client.list_objects(bucket, recursive=True):
        client.remove_object(bucket, obj.object_name)
    client.remove_bucket(bucket)


async def test_an_s3_prefix_is_ingested(s3_bucket: tuple[object, str], pg_store: PgVectorStore) -> None:
    client, bucket = s3_bucket
    files = {
        "handbook/refunds.html": b"<html><head><title>Refunds</title></head><body><p>Refunds take five days.</p></body></html>",
        "handbook/notes.md": b"# Notes\n\nShipping takes two days.",
        "handbook/logo.png": b"\x89PNG",
        "other/skip.txt": b"not under the prefix",
    }
    for key, data in files.items():
        client.put_object(bucket, key, io.BytesIO(data), len(data))  # type: ignore[attr-defined]
    source = S3Source(client, bucket, "handbook/")
    assert [r.uri for r in source.refs()] == [
        f"s3://{bucket}/handbook/notes.md",
        f"s3://{bucket}/handbook/refunds.html",
    ]
    report = await make_ingestor(pg_store).ingest(source, "kb")
    assert report.count(DocumentStatus.ADDED) == 2
    docs = {d.source_uri: d for d in await pg_store.list_documents()}
    assert docs[f"s3://{bucket}/handbook/refunds.html"].title == "Refunds"
    again = await make_ingestor(pg_store).ingest(source, "kb")
    assert again.count(DocumentStatus.UNCHANGED) == 2
