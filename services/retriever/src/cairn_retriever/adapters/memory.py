"""In-memory adapters for unit tests and development: a deterministic hashing embedder and a vector
store with exact cosine search and a simple term-matching full text. The behaviour suite runs the
same tests against this store and the real ones, so it cannot drift from them."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from cairn_retriever.domain.models import (
    ChunkRecord,
    Document,
    DocumentState,
    SearchHit,
    SearchMode,
    SearchQuery,
)
from cairn_retriever.domain.ranking import rank_hybrid, rank_vector

_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_STOP_WORDS_TEXT = """a an and are as at be but by do does for from has have how i if in into is it its no not of on or
s so such t that the their then there these they this to was what when where which who why will with you your"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def terms(text: str) -> list[str]:
    """Lower-cased words without stop words, a plural `s` trimmed: the in-memory full-text terms."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        out.append(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return out


class HashingEmbedder:
    """A deterministic Embedder: each content word adds ±1 to a hashed dimension; vectors are unit length.

    Texts sharing words are similar, texts sharing none are orthogonal (up to hash collisions).
    `count_tokens` counts words and punctuation marks: an approximation of a WordPiece tokenizer.
    """

    def __init__(self, dimension: int = 384, name: str = "hashing-embedder") -> None:
        self.dimension = dimension
        self.name = name
        self.calls: list[int] = []
        """Sizes of the batches embedded, for tests."""

    def _vector(self, text: str) -> list[float]:
        v = [0.0] * self.dimension
        for term in terms(text):
            h = hashlib.blake2b(term.encode(), digest_size=8).digest()
            v[int.from_bytes(h[:4], "big") % self.dimension] += 1.0 if h[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in v))
        if norm == 0.0:
            v[0], norm = 1.0, 1.0
        return [x / norm for x in v]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


@dataclass
class InMemoryVectorStore:
    """The VectorStore port in dictionaries: exact cosine ranking, term-count full text (every term, else
    any term, as in PostgreSQL), RRF fusion."""

    documents: dict[str, Document] = field(default_factory=dict)
    chunks: dict[str, list[ChunkRecord]] = field(default_factory=dict)
    down: bool = False
    """Set to make every call fail as an outage would (ConnectionError)."""

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("in-memory vector store is down")

    def _find(self, collection: str, source_uri: str) -> Document | None:
        return next(
            (d for d in self.documents.values() if d.collection == collection and d.source_uri == source_uri),
            None,
        )

    async def document_state(self, collection: str, source_uri: str) -> DocumentState | None:
        self._check()
        doc = self._find(collection, source_uri)
        return DocumentState(doc.content_hash, doc.chunking) if doc else None

    async def replace_document(self, document: Document, chunks: Sequence[ChunkRecord]) -> None:
        self._check()
        for ch in chunks:
            if len(ch.embedding) == 0 or ch.document_id != document.document_id:
                raise ValueError(f"chunk {ch.chunk_id} does not belong to {document.document_id}")
        self.documents[document.document_id] = document
        self.chunks[document.document_id] = list(chunks)

    async def delete_document(self, source_uri: str, collection: str | None = None) -> int:
        self._check()
        gone = [
            d.document_id
            for d in self.documents.values()
            if d.source_uri == source_uri and (collection is None or d.collection == collection)
        ]
        for doc_id in gone:
            del self.documents[doc_id]
            self.chunks.pop(doc_id, None)
        return len(gone)

    async def get_document(self, document_id: str) -> Document | None:
        self._check()
        return self.documents.get(document_id)

    async def list_documents(self, collection: str | None = None) -> list[Document]:
        self._check()
        docs = [d for d in self.documents.values() if collection is None or d.collection == collection]
        return sorted(docs, key=lambda d: (d.collection, d.source_uri))

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        self._check()
        hits: dict[str, SearchHit] = {}
        text_scores: dict[str, float] = {}
        every_term: set[str] = set()
        wanted = Counter(terms(query.text))
        collections = query.collections
        for doc in self.documents.values():
            if collections is not None and doc.collection not in collections:
                continue
            for ch in self.chunks.get(doc.document_id, []):
                sim = cosine(query.embedding, ch.embedding)
                hits[ch.chunk_id] = SearchHit(
                    chunk_id=ch.chunk_id,
                    document_id=doc.document_id,
                    collection=doc.collection,
                    source_uri=doc.source_uri,
                    text=ch.text,
                    content_hash=ch.content_hash,
                    ordinal=ch.ordinal,
                    similarity=sim,
                    fused=sim,
                )
                have = Counter(terms(ch.text))
                score = sum(math.log1p(have[t]) for t in wanted if have[t])
                if score > 0:
                    text_scores[ch.chunk_id] = score
                    if all(have[t] for t in wanted):
                        every_term.add(ch.chunk_id)
        by_similarity = sorted(hits.values(), key=lambda h: (-h.similarity, h.chunk_id))
        if query.mode is SearchMode.VECTOR:
            return rank_vector(by_similarity, query)
        depth = max(query.depth, query.k)
        vector_ids = [h.chunk_id for h in by_similarity[:depth]]
        # chunks holding every query term; when none does, chunks holding any
        matching = every_term or set(text_scores)
        text_ids = sorted(matching, key=lambda cid: (-text_scores[cid], cid))[:depth]
        return rank_hybrid(hits, vector_ids, text_ids, query)
