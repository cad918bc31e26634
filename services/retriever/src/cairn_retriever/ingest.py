"""Ingestion: read a source's documents, chunk, embed and store them, skipping what has not changed.

A document is identified by (collection, source URI). Its content hash is the SHA-256 of the bytes
read; when it and the chunking signature equal the stored ones, re-ingesting is a no-op (nothing
is extracted, embedded or written). Otherwise the document's chunks are replaced by the new ones
in one store operation (one PostgreSQL transaction).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, Protocol

from cairn_retriever.domain.chunking import TextChunk, chunk_text
from cairn_retriever.domain.models import ChunkRecord, Document, chunk_id_for, content_hash, document_id_for
from cairn_retriever.ports import DocumentRef, DocumentSource, Embedder, ExtractedText, VectorStore

Extract = Callable[[DocumentRef, bytes], ExtractedText]


class DocumentStatus(StrEnum):
    """What ingestion did with one document."""

    ADDED = "added"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class DocumentOutcome:
    """The result for one document."""

    uri: str
    status: DocumentStatus
    chunks: int = 0
    chars: int = 0
    seconds: float = 0.0
    error: str | None = None
    content_hash: str | None = None
    """`sha256:<hex>` of the bytes read (none when they could not be read)."""


@dataclass
class IngestReport:
    """Every document's outcome and the totals."""

    source: str
    collection: str
    outcomes: list[DocumentOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: DocumentStatus) -> int:
        """Documents that ended with `status`."""
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def chunks(self) -> int:
        """Chunks embedded and written in this run."""
        return sum(
            o.chunks for o in self.outcomes if o.status in (DocumentStatus.ADDED, DocumentStatus.REPLACED)
        )

    @property
    def chunks_per_second(self) -> float:
        """Chunks embedded and written per second of the whole run."""
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


class IngestProgress(Protocol):
    """Receives progress of a long ingestion (a progress bar in the CLI)."""

    def started(self, source: str, documents: int) -> None:
        """The source lists `documents` documents."""

    def chunks_embedded(self, count: int) -> None:
        """`count` more chunks were embedded."""

    def document_done(self, outcome: DocumentOutcome) -> None:
        """One document is finished."""


class SilentProgress:
    """IngestProgress that reports nothing."""

    def started(self, source: str, documents: int) -> None:
        pass

    def chunks_embedded(self, count: int) -> None:
        pass

    def document_done(self, outcome: DocumentOutcome) -> None:
        pass


@dataclass(frozen=True)
class ChunkingConfig:
    """How documents are chunked: the unit sizes are counted in, the chunk size and the overlap."""

    unit: Literal["tokens", "chars"] = "tokens"
    size: int = 200
    overlap: int = 40

    def signature(self, embedder_name: str) -> str:
        """What, besides the bytes, decides a document's chunks and vectors; stored with the document."""
        return f"{self.unit}:{self.size}:{self.overlap}:{embedder_name}"


class Ingestor:
    """Ingests documents of a source into a collection of a vector store."""

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        extract: Extract,
        chunking: ChunkingConfig | None = None,
        batch_size: int = 32,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.extract = extract
        self.chunking = chunking or ChunkingConfig()
        self.batch_size = batch_size
        self.signature = self.chunking.signature(embedder.name)

    def chunk(self, text: str) -> list[TextChunk]:
        """The chunks of a document text under this ingestor's chunking."""
        measure = self.embedder.count_tokens if self.chunking.unit == "tokens" else len
        return chunk_text(text, self.chunking.size, self.chunking.overlap, measure)

    async def ingest(
        self, source: DocumentSource, collection: str, progress: IngestProgress | None = None
    ) -> IngestReport:
        """Ingest every document of `source`. A document that cannot be read or parsed is reported as
        failed and the rest go on; a store outage (TransientError, OSError) stops the run."""
        progress = progress or SilentProgress()
        started = time.perf_counter()
        refs = await asyncio.to_thread(source.refs)
        report = IngestReport(source.describe(), collection)
        progress.started(report.source, len(refs))
        for ref in refs:
            outcome = await self.ingest_one(source, ref, collection, progress)
            report.outcomes.append(outcome)
            progress.document_done(outcome)
        report.seconds = time.perf_counter() - started
        return report

    async def ingest_one(
        self, source: DocumentSource, ref: DocumentRef, collection: str, progress: IngestProgress
    ) -> DocumentOutcome:
        """Ingest one document (see `ingest`)."""
        t0 = time.perf_counter()
        try:
            data = await asyncio.to_thread(source.read, ref)
        except (OSError, KeyError) as exc:
            return DocumentOutcome(ref.uri, DocumentStatus.FAILED, error=f"cannot read: {exc}")
        digest = content_hash(data)
        state = await self.store.document_state(collection, ref.uri)
        if state is not None and state.content_hash == digest and state.chunking == self.signature:
            return DocumentOutcome(
                ref.uri, DocumentStatus.UNCHANGED, seconds=time.perf_counter() - t0, content_hash=digest
            )
        try:
            extracted, pieces = await asyncio.to_thread(self._prepare, ref, data)
        except Exception as exc:  # a parser failing on one bad file must not stop the run
            return DocumentOutcome(
                ref.uri, DocumentStatus.FAILED, error=f"cannot extract text: {exc}", content_hash=digest
            )
        vectors: list[list[float]] = []
        for i in range(0, len(pieces), self.batch_size):
            batch = [p.text for p in pieces[i : i + self.batch_size]]
            vectors.extend(await asyncio.to_thread(self.embedder.embed_documents, batch))
            progress.chunks_embedded(len(batch))
        doc_id = document_id_for(collection, ref.uri)
        document = Document(
            document_id=doc_id,
            collection=collection,
            source_uri=ref.uri,
            content_hash=digest,
            chunking=self.signature,
            media_type=ref.media_type,
            title=extracted.title,
            char_count=len(extracted.text),
            chunk_count=len(pieces),
            ingested_at=datetime.now(UTC),
        )
        records = [
            ChunkRecord(
                chunk_id=chunk_id_for(doc_id, digest, self.signature, p.ordinal),
                document_id=doc_id,
                ordinal=p.ordinal,
                text=p.text,
                content_hash=content_hash(p.text),
                char_start=p.start,
                char_end=p.end,
                embedding=v,
            )
            for p, v in zip(pieces, vectors, strict=True)
        ]
        await self.store.replace_document(document, records)
        status = DocumentStatus.ADDED if state is None else DocumentStatus.REPLACED
        return DocumentOutcome(
            ref.uri, status, len(records), len(extracted.text), time.perf_counter() - t0, content_hash=digest
        )

    def _prepare(self, ref: DocumentRef, data: bytes) -> tuple[ExtractedText, list[TextChunk]]:
        extracted = self.extract(ref, data)
        return extracted, self.chunk(extracted.text)
