"""Watched sources: a scan re-ingests what changed at the origin, deletes what is gone, and publishes one
`cairn.document.reindexed.v1` per document it changed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cairn_bus import InMemoryPublisher
from cairn_events import DocumentReindexedV1
from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore
from cairn_retriever.adapters.sources import FileSource, PydocTopicsSource, extract_text, uri_prefix
from cairn_retriever.app import router
from cairn_retriever.domain.models import SearchQuery
from cairn_retriever.ingest import ChunkingConfig, Ingestor
from cairn_retriever.reindex import WatchedSource, parse_watched, scan, scan_watched

NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher("/cairn/retriever", allowed_types=router.published_types)


@pytest.fixture
def ingestor() -> Ingestor:
    return Ingestor(HashingEmbedder(), InMemoryVectorStore(), extract_text, ChunkingConfig("tokens", 60, 10))


def events(publisher: InMemoryPublisher) -> list[DocumentReindexedV1]:
    return publisher.events(DocumentReindexedV1.event_type)


async def test_a_scan_adds_then_replaces_changed_and_deletes_removed_documents(
    tmp_path: Path, ingestor: Ingestor, publisher: InMemoryPublisher
) -> None:
    (tmp_path / "refunds.md").write_text("Refunds are paid within five days.", encoding="utf-8")
    (tmp_path / "shipping.txt").write_text("Parcels leave within two days.", encoding="utf-8")
    watched = WatchedSource("acme/kb", str(tmp_path))
    source = FileSource(tmp_path)

    first = await scan(watched, source, uri_prefix(source), ingestor, publisher, lambda: NOW)
    assert [(e.change, e.source_uri.rsplit("/", 1)[-1]) for e in first.events] == [
        ("added", "refunds.md"),
        ("added", "shipping.txt"),
    ]
    assert all(e.tenant == "acme" and e.collection == "acme/kb" for e in first.events)

    again = await scan(watched, source, uri_prefix(source), ingestor, publisher, lambda: NOW)
    assert again.events == [], "nothing changed at the origin: nothing re-indexed"

    (tmp_path / "refunds.md").write_text("Refunds are paid within ten days.", encoding="utf-8")
    (tmp_path / "shipping.txt").unlink()
    third = await scan(watched, source, uri_prefix(source), ingestor, publisher, lambda: NOW)
    changed, removed = third.events
    assert (changed.change, removed.change) == ("changed", "removed")
    assert changed.previous_content_hash == first.events[0].content_hash != changed.content_hash
    assert (removed.content_hash, removed.chunk_count) == (None, 0)
    assert removed.previous_content_hash == first.events[1].content_hash
    docs = await ingestor.store.list_documents("acme/kb")
    assert [d.source_uri for d in docs] == [changed.source_uri]
    query = SearchQuery("refunds ten days", ingestor.embedder.embed_query("refunds ten days"), k=1)
    (hit,) = await ingestor.store.search(query)
    assert "ten days" in hit.text
    assert len(events(publisher)) == 4


async def test_event_ids_are_fixed_by_the_change(
    tmp_path: Path, ingestor: Ingestor, publisher: InMemoryPublisher
) -> None:
    (tmp_path / "a.txt").write_text("alpha", encoding="utf-8")
    source = FileSource(tmp_path)
    await scan(
        WatchedSource("kb", str(tmp_path)), source, uri_prefix(source), ingestor, publisher, lambda: NOW
    )
    other = InMemoryPublisher("/cairn/retriever", allowed_types=router.published_types)
    fresh = Ingestor(HashingEmbedder(), InMemoryVectorStore(), extract_text)
    await scan(WatchedSource("kb", str(tmp_path)), source, uri_prefix(source), fresh, other, lambda: NOW)
    assert publisher.messages[0].meta.id == other.messages[0].meta.id  # another replica, same change


async def test_documents_outside_the_source_are_left_alone(
    tmp_path: Path, ingestor: Ingestor, publisher: InMemoryPublisher
) -> None:
    await ingestor.ingest(PydocTopicsSource(["pass"]), "kb")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha", encoding="utf-8")
    (tmp_path / "docs-old.txt").write_text("beta", encoding="utf-8")
    await ingestor.ingest(FileSource(tmp_path / "docs-old.txt"), "kb")
    source = FileSource(folder)
    report = await scan(
        WatchedSource("kb", str(folder)), source, uri_prefix(source), ingestor, publisher, lambda: NOW
    )
    assert [e.change for e in report.events] == ["added"]
    assert len(await ingestor.store.list_documents("kb")) == 3


async def test_a_source_that_cannot_be_listed_deletes_nothing_and_the_others_go_on(
    tmp_path: Path, ingestor: Ingestor, publisher: InMemoryPublisher
) -> None:
    (tmp_path / "a.txt").write_text("alpha", encoding="utf-8")
    watched = parse_watched([f"kb={tmp_path / 'missing'}", f"kb = {tmp_path}"])
    reports = await scan_watched(watched, ingestor, publisher, lambda: NOW)
    assert [r.watched.spec for r in reports] == [str(tmp_path)]
    assert [e.change for e in events(publisher)] == ["added"]


@pytest.mark.parametrize("entry", ["kb", "=folder", "kb=", " = "])
def test_a_malformed_watched_source_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="collection"):
        parse_watched([entry])


def test_what_a_scan_may_delete_under(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("x", encoding="utf-8")
    assert uri_prefix(FileSource(tmp_path)) == tmp_path.resolve().as_uri() + "/"
    assert uri_prefix(FileSource(tmp_path / "one.txt")) == (tmp_path / "one.txt").resolve().as_uri()
    assert uri_prefix(PydocTopicsSource()) == "pydoc:topics/"
    with pytest.raises(ValueError, match="cannot be watched"):
        uri_prefix(PydocTopicsSource(["pass"]))
