"""What the retriever stores and finds: documents, their chunks, search queries and hits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class SearchMode(StrEnum):
    """How a search ranks chunks."""

    HYBRID = "hybrid"
    """Nearest vectors and full-text matches, fused by reciprocal rank."""
    VECTOR = "vector"
    """Nearest vectors only."""


def content_hash(data: bytes | str) -> str:
    """`sha256:<hex>` of the bytes (text is hashed as UTF-8)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def document_id_for(collection: str, source_uri: str) -> str:
    """The stable id of the document read from `source_uri` into `collection` (same across versions)."""
    digest = hashlib.sha256(f"{collection}\n{source_uri}".encode()).hexdigest()
    return f"doc_{digest[:24]}"


def chunk_id_for(document_id: str, document_hash: str, chunking: str, ordinal: int) -> str:
    """The id of chunk `ordinal` of one version of a document: a changed document gets new chunk ids."""
    version = hashlib.sha256(f"{document_hash}\n{chunking}".encode()).hexdigest()[:12]
    return f"{document_id}.{version}.{ordinal}"


@dataclass(frozen=True)
class Document:
    """One ingested document (one version: the last ingested), with its provenance."""

    document_id: str
    collection: str
    source_uri: str
    content_hash: str
    """`sha256:<hex>` of the source bytes as read; an unchanged hash makes re-ingestion a no-op."""
    chunking: str
    """How the text was chunked and embedded, e.g. `tokens:200:40:all-MiniLM-L6-v2`."""
    media_type: str
    title: str | None
    char_count: int
    chunk_count: int
    ingested_at: datetime


@dataclass(frozen=True)
class DocumentState:
    """What decides whether a source must be ingested again."""

    content_hash: str
    chunking: str


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk of a document with its embedding, as written to a vector store."""

    chunk_id: str
    document_id: str
    ordinal: int
    text: str
    content_hash: str
    """`sha256:<hex>` of `text`."""
    char_start: int
    """Offset of the chunk in the extracted document text (before surrounding whitespace is trimmed)."""
    char_end: int
    embedding: Sequence[float]


@dataclass(frozen=True)
class SearchQuery:
    """One search: its text and embedding, how many hits, where, and the similarity floor."""

    text: str
    embedding: Sequence[float]
    k: int
    mode: SearchMode = SearchMode.HYBRID
    collection: str | tuple[str, ...] | None = None
    """A stored collection name, or several (searched as one); None searches every collection."""
    min_similarity: float | None = None
    """Drop chunks whose cosine similarity to the query is below this (before fusion)."""
    depth: int = 40
    """Candidates taken from each ranked list before fusion (at least k)."""
    rrf_k: int = 60

    @property
    def collections(self) -> tuple[str, ...] | None:
        """The collections searched, as a tuple; None for all."""
        if self.collection is None:
            return None
        return (self.collection,) if isinstance(self.collection, str) else tuple(self.collection)


@dataclass(frozen=True)
class SearchHit:
    """A chunk found by a search, with its provenance and scores.

    `similarity` is the cosine similarity of the chunk's embedding to the query embedding (in
    [-1, 1]; what `min_similarity` thresholds and what `ContextChunk.score` carries). `fused` is
    the ranking score: the reciprocal-rank-fusion score in hybrid mode, the similarity in vector
    mode (Weaviate: its own hybrid score). Hits come best first by `fused`.
    """

    chunk_id: str
    document_id: str
    collection: str
    source_uri: str
    text: str
    content_hash: str
    ordinal: int
    similarity: float
    fused: float
    vector_rank: int | None = None
    text_rank: int | None = None
