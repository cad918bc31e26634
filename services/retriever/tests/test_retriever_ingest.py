"""Ingestion with fakes: added, unchanged (a no-op by content hash), replaced, failed; progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore
from cairn_retriever.adapters.sources import FileSource, PydocTopicsSource, extract_text
from cairn_retriever.domain.models import SearchMode, SearchQuery
from cairn_retriever.ingest import ChunkingConfig, DocumentOutcome, DocumentStatus, Ingestor


class RecordingProgress:
    def __init__(self) -> None:
        self.total: int | None = None
        self.chunks = 0
        self.done: list[DocumentOutcome] = []

    def started(self, source: str, documents: int) -> None:
        self.total = documents

    def chunks_embedded(self, count: int) -> None:
        self.chunks += count

    def document_done(self, outcome: DocumentOutcome) -> None:
        self.done.append(outcome)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "refunds.md").write_text(
        "# Refunds\n\nRefunds are paid within five business days of receiving the return.\n\n"
        "Keep the receipt: a refund needs the order number."
    )
    (tmp_path / "shipping.txt").write_text("Shipping takes two days. " * 40)
    return tmp_path


def ingestor(embedder: HashingEmbedder, store: InMemoryVectorStore, size: int = 60) -> Ingestor:
    return Ingestor(embedder, store, extract_text, ChunkingConfig("tokens", size, 10), batch_size=4)


async def all_texts(store: InMemoryVectorStore) -> list[str]:
    return sorted(c.text for chunks in store.chunks.values() for c in chunks)


async def test_a_folder_is_chunked_embedded_and_stored(
    folder: Path, embedder: HashingEmbedder, memory_store: InMemoryVectorStore
) -> None:
    progress = RecordingProgress()
    report = await ingestor(embedder, memory_store).ingest(FileSource(folder), "kb", progress)
    assert report.count(DocumentStatus.ADDED) == 2
    docs = await memory_store.list_documents("kb")
    assert [Path(d.source_uri).name for d in docs] == ["refunds.md", "shipping.txt"]
    refunds = docs[0]
    assert refunds.title == "Refunds"
    assert refunds.content_hash.startswith("sha256:")
    assert refunds.chunking == "tokens:60:10:hashing-embedder"
    assert refunds.chunk_count == len(memory_store.chunks[refunds.document_id])
    assert report.chunks == sum(d.chunk_count for d in docs) > 2
    assert max(embedder.calls) <= 4
    assert progress.total == 2
    assert progress.chunks == report.chunks
    assert [o.status for o in progress.done] == [DocumentStatus.ADDED] * 2
    for chunks in memory_store.chunks.values():
        for c in chunks:
            assert embedder.count_tokens(c.text) <= 60
    hits = await memory_store.search(
        SearchQuery("refund receipt", embedder.embed_query("refund receipt"), 1, SearchMode.HYBRID, "kb")
    )
    assert hits[0].source_uri.endswith("refunds.md")


async def test_reingesting_unchanged_files_is_a_no_op(
    folder: Path, embedder: HashingEmbedder, memory_store: InMemoryVectorStore
) -> None:
    ing = ingestor(embedder, memory_store)
    await ing.ingest(FileSource(folder), "kb")
    before = {d.source_uri: d for d in await memory_store.list_documents()}
    calls = len(embedder.calls)
    report = await ing.ingest(FileSource(folder), "kb")
    assert report.count(DocumentStatus.UNCHANGED) == 2
    assert report.chunks == 0
    assert len(embedder.calls) == calls  # nothing embedded
    after = {d.source_uri: d for d in await memory_store.list_documents()}
    assert after == before  # not even ingested_at moved


async def test_a_changed_file_replaces_its_chunks(
    folder: Path, embedder: HashingEmbedder, memory_store: InMemoryVectorStore
) -> None:
    ing = ingestor(embedder, memory_store)
    await ing.ingest(FileSource(folder), "kb")
    old_ids = {c.chunk_id for chunks in memory_store.chunks.values() for c in chunks}
    (folder / "refunds.md").write_text("# Refunds\n\nRefunds now take ten business days.")
    report = await ing.ingest(FileSource(folder), "kb")
    by_name = {Path(o.uri).name: o.status for o in report.outcomes}
    assert by_name == {"refunds.md": DocumentStatus.REPLACED, "shipping.txt": DocumentStatus.UNCHANGED}
    texts = await all_texts(memory_store)
    assert "# Refunds\n\nRefunds now take ten business days." in texts
    assert not any("five business days" in t for t in texts)
    refunds = next(d for d in await memory_store.list_documents() if d.source_uri.endswith("refunds.md"))
    new_ids = {c.chunk_id for c in memory_store.chunks[refunds.document_id]}
    assert not new_ids & old_ids  # a new version gets new chunk ids


async def test_new_chunking_settings_reingest_everything(
    folder: Path, embedder: HashingEmbedder, memory_store: InMemoryVectorStore
) -> None:
    await ingestor(embedder, memory_store, size=60).ingest(FileSource(folder), "kb")
    report = await ingestor(embedder, memory_store, size=30).ingest(FileSource(folder), "kb")
    assert report.count(DocumentStatus.REPLACED) == 2


async def test_a_bad_file_fails_alone(
    folder: Path, embedder: HashingEmbedder, memory_store: InMemoryVectorStore
) -> None:
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    report = await ingestor(embedder, memory_store).ingest(FileSource(folder), "kb")
    failed = [o for o in report.outcomes if o.status is DocumentStatus.FAILED]
    assert [Path(o.uri).name for o in failed] == ["broken.pdf"]
    assert failed[0].error
    assert report.count(DocumentStatus.ADDED) == 2
    assert await memory_store.document_state("kb", failed[0].uri) is None


async def test_an_empty_document_is_recorded_without_chunks(
    tmp_path: Path, embedder: HashingEmbedder, memory_store: InMemoryVectorStore
) -> None:
    (tmp_path / "empty.txt").write_text("   \n")
    report = await ingestor(embedder, memory_store).ingest(FileSource(tmp_path), "kb")
    assert report.count(DocumentStatus.ADDED) == 1
    (doc,) = await memory_store.list_documents()
    assert doc.chunk_count == 0
    again = await ingestor(embedder, memory_store).ingest(FileSource(tmp_path), "kb")
    assert again.count(DocumentStatus.UNCHANGED) == 1


async def test_a_store_outage_stops_the_run(folder: Path, embedder: HashingEmbedder) -> None:
    with pytest.raises(ConnectionError):
        await ingestor(embedder, InMemoryVectorStore(down=True)).ingest(FileSource(folder), "kb")


async def test_pydoc_topics_become_one_document_each(
    embedder: HashingEmbedder, memory_store: InMemoryVectorStore
) -> None:
    report = await ingestor(embedder, memory_store, size=120).ingest(
        PydocTopicsSource(["yield", "pass"]), "py"
    )
    assert report.count(DocumentStatus.ADDED) == 2
    assert [d.source_uri for d in await memory_store.list_documents()] == [
        "pydoc:topics/pass",
        "pydoc:topics/yield",
    ]
