"""The retriever's ports: the embedding model, the vector store and the places documents come from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cairn_retriever.domain.models import ChunkRecord, Document, DocumentState, SearchHit, SearchQuery
from cairn_retriever.domain.priors import ChunkKey, ServedContext, Votes


class Embedder(Protocol):
    """Turns text into unit-length vectors (cosine similarity = dot product) and counts its tokens.

    Methods are synchronous and CPU-bound: async callers run them with `asyncio.to_thread`.
    """

    name: str
    """The model's name, recorded with every document it embedded."""
    dimension: int
    """Length of every vector returned."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of `text` (no special tokens, no truncation)."""
        ...


class VectorStore(Protocol):
    """Documents and their embedded chunks, searchable by vector and by full text.

    Search contract (every adapter; the behaviour suite checks it): `similarity` of a hit is the
    cosine similarity of its embedding to the query embedding; hits below `min_similarity` are
    never returned. Vector mode returns the `k` most similar chunks (approximately, for ANN
    indexes), most similar first. Hybrid mode takes up to `depth` chunks from the vector ranking and
    up to `depth` full-text matches (chunks holding every query term; when none does, chunks holding
    any), and returns the `k` best by fusing the two rankings (reciprocal rank fusion; Weaviate: its
    hybrid query with alpha, BM25 over any term). `collection`
    restricts the search to one collection or several (one ranking over all of them); None searches
    all collections. Outages raise OSError or TransientError.
    """

    async def document_state(self, collection: str, source_uri: str) -> DocumentState | None:
        """Hash and chunking of the stored version of a document, or None when it is not stored."""
        ...

    async def replace_document(self, document: Document, chunks: Sequence[ChunkRecord]) -> None:
        """Store the document and exactly these chunks, dropping its previous chunks.

        Readers see the old version or the new one, never a mix or nothing (PostgreSQL: one
        transaction).
        """
        ...

    async def delete_document(self, source_uri: str, collection: str | None = None) -> int:
        """Delete the document read from `source_uri` (in one collection or all) with its chunks;
        returns how many documents went."""
        ...

    async def get_document(self, document_id: str) -> Document | None:
        """The stored document with this id, or None."""
        ...

    async def list_documents(self, collection: str | None = None) -> list[Document]:
        """Stored documents, by collection then source URI."""
        ...

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        """Chunks for the query, best first (see the class docstring)."""
        ...


@dataclass(frozen=True)
class DocumentRef:
    """A document a source can read: where it is, what kind it is and a human title."""

    uri: str
    media_type: str
    """`text/plain`, `text/markdown`, `text/html` or `application/pdf`."""
    title: str | None = None


@dataclass(frozen=True)
class ExtractedText:
    """The text of a document, ready to chunk, and a title when the document names one."""

    text: str
    title: str | None = None


class DocumentSource(Protocol):
    """A place documents are read from: a file or folder, an S3 prefix, the Python docs.

    Synchronous (files, the S3 client and PDF parsing block): async callers use `asyncio.to_thread`.
    """

    def describe(self) -> str:
        """The source as the user named it, e.g. `s3://docs/handbook/`."""
        ...

    def refs(self) -> list[DocumentRef]:
        """Every readable document of the source, in a stable order."""
        ...

    def read(self, ref: DocumentRef) -> bytes:
        """The document's bytes as stored."""
        ...


class PriorStore(Protocol):
    """The retrieval loop's state, per tenant: what each request was served, and the votes feedback
    cast on chunks (`domain.priors`). `conn`: a database connection whose open transaction the write
    joins (the inbox claim's), or None. Outages raise TransientError."""

    async def record_served(self, served: ServedContext, conn: Any = None) -> None:
        """Remember what a request was served (a request served again keeps its first record)."""
        ...

    async def served(self, tenant: str, request_id: str) -> ServedContext | None:
        """What the tenant's request was served, or None (never served, or purged)."""
        ...

    async def purge_served(self, before: datetime) -> int:
        """Forget what requests served before `before` were given; returns how many were forgotten."""
        ...

    async def add_votes(self, tenant: str, votes: Mapping[ChunkKey, Votes], conn: Any = None) -> None:
        """Add the votes to the tenant's counts of each chunk."""
        ...

    async def votes(self, tenant: str, keys: Sequence[ChunkKey]) -> dict[ChunkKey, Votes]:
        """The tenant's counts of those chunks that have any."""
        ...
