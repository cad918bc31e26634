"""The retrieval loop's learned per-chunk prior: what feedback says about a chunk, and how it moves ranking.

A chunk's prior belongs to one tenant and is keyed by (document id, chunk content hash), so it
survives re-ingestion of an unchanged chunk and is dropped with a chunk whose text changed.

Votes. When a request is answered, the retriever remembers the chunks it served and the wider
candidate pool they were taken from (`ServedContext`). Feedback on the request then votes:
- negative feedback (thumbs down, or a rating of 2 or less): one `down` for every served chunk,
  except chunks of a source the feedback names as right (`source:<uri>` tags);
- a named source: one `up` for its best-ranked chunk in the candidate pool (served or missed: the
  chunk of that source the question is closest to) — the prior can only reorder candidates, so a
  source outside the pool gets nothing (counted as `unreachable`);
- positive feedback (thumbs up, or a rating of 4 or more) naming no source casts nothing: it does
  not say which chunk helped, and voting up every served chunk lifted the wrong co-served chunks
  too (benchmarks/retrieval_loop_bench.py, top_k 4, w 1: the replayed questions' hit rate went from
  0.95 to 0.90, held-out from 0.825 to 0.775).

Prior. With u ups and d downs, p = (u - d) / (u + d + s), s the smoothing (default 1): bounded in
(-1, 1), one vote moves it by 1 / (1 + s), and more votes move it less.

Ranking. The store returns a candidate pool best first, each with its ranking score (`fused`: the
RRF score in hybrid mode, the cosine similarity in vector mode, Weaviate's hybrid score). A candidate
scores f / f_top + w * p: its score relative to the best candidate's (in [0, 1]; negative scores
count as 0) plus w times its prior. Without priors the order is the store's. The boost is at most w
whatever the store's scale, and it only reorders candidates the store already scored close to each
other, so a chunk raised for one question is not pushed onto unrelated ones. (An earlier version
added w * p / (c + 1) to the rank score 1 / (c + r): RRF's flat rank scores let one vote lift a chunk
from anywhere in the pool, and the benchmark's hit rates fell; see docs/retrieval-loop.md.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from cairn_retriever.domain.models import SearchHit

NEGATIVE_RATING = 2
"""Ratings at or below this are negative feedback."""
POSITIVE_RATING = 4
"""Ratings at or above this are positive feedback."""


@dataclass(frozen=True, order=True)
class ChunkKey:
    """Which chunk a prior is about: its document and its text's hash (stable across re-ingestion)."""

    document_id: str
    content_hash: str


@dataclass(frozen=True)
class ServedChunk:
    """A chunk as a request saw it: its key and the source it came from."""

    document_id: str
    content_hash: str
    source_uri: str

    @property
    def key(self) -> ChunkKey:
        """The prior's key of this chunk."""
        return ChunkKey(self.document_id, self.content_hash)

    @classmethod
    def of(cls, hit: SearchHit) -> ServedChunk:
        """The served record of a search hit."""
        return cls(hit.document_id, hit.content_hash, hit.source_uri)


@dataclass(frozen=True)
class ServedContext:
    """What the retriever gave one request: the chunks placed in its context and the candidate pool
    they were chosen from (the served ones included), best first."""

    tenant: str
    request_id: str
    served: tuple[ServedChunk, ...]
    candidates: tuple[ServedChunk, ...]
    served_at: datetime


@dataclass(frozen=True)
class Votes:
    """Feedback counted on one chunk of one tenant."""

    up: int = 0
    down: int = 0

    def __add__(self, other: Votes) -> Votes:
        return Votes(self.up + other.up, self.down + other.down)

    def prior(self, smoothing: float = 1.0) -> float:
        """(up - down) / (up + down + smoothing): in (-1, 1), 0 without votes."""
        total = self.up + self.down
        return 0.0 if total == 0 else (self.up - self.down) / (total + smoothing)


class Sentiment(StrEnum):
    """What a piece of feedback says about the answer as a whole."""

    NEGATIVE = "negative"
    POSITIVE = "positive"
    NEUTRAL = "neutral"


def sentiment_of(thumbs: str | None, rating: int | None) -> Sentiment:
    """Thumbs decide; else the rating (<= 2 negative, >= 4 positive); else neutral."""
    if thumbs == "down":
        return Sentiment.NEGATIVE
    if thumbs == "up":
        return Sentiment.POSITIVE
    if rating is not None and rating <= NEGATIVE_RATING:
        return Sentiment.NEGATIVE
    if rating is not None and rating >= POSITIVE_RATING:
        return Sentiment.POSITIVE
    return Sentiment.NEUTRAL


@dataclass(frozen=True)
class FeedbackVotes:
    """The votes one piece of feedback casts, and the named sources it could not reach."""

    votes: dict[ChunkKey, Votes]
    unreachable: tuple[str, ...] = ()

    @property
    def ups(self) -> int:
        """Up votes cast."""
        return sum(v.up for v in self.votes.values())

    @property
    def downs(self) -> int:
        """Down votes cast."""
        return sum(v.down for v in self.votes.values())


def feedback_votes(
    sentiment: Sentiment, right_sources: Sequence[str], served: ServedContext
) -> FeedbackVotes:
    """The votes feedback on a served request casts (see the module docstring)."""
    votes: dict[ChunkKey, Votes] = {}

    def cast(keys: Iterable[ChunkKey], vote: Votes) -> None:
        for key in dict.fromkeys(keys):
            votes[key] = votes.get(key, Votes()) + vote

    right = set(right_sources)
    if sentiment is Sentiment.NEGATIVE:
        cast((c.key for c in served.served if c.source_uri not in right), Votes(down=1))
    best: dict[str, ChunkKey] = {}
    for chunk in served.candidates:  # best first: the first chunk of each source is its best
        best.setdefault(chunk.source_uri, chunk.key)
    cast((best[uri] for uri in right_sources if uri in best), Votes(up=1))
    pool = set(best)
    unreachable = tuple(uri for uri in right_sources if uri not in pool)
    return FeedbackVotes(votes, unreachable)


def rerank(
    candidates: Sequence[SearchHit], priors: Mapping[ChunkKey, float], *, weight: float, k: int
) -> list[SearchHit]:
    """The best `k` of a store's candidates (best first) once each chunk's prior is added to its
    relative score (see the module docstring); `fused` of each hit becomes that score."""
    top = max((h.fused for h in candidates), default=0.0)
    scored = []
    for rank, hit in enumerate(candidates, start=1):
        prior = priors.get(ChunkKey(hit.document_id, hit.content_hash), 0.0)
        relative = max(hit.fused, 0.0) / top if top > 0 else 0.0
        scored.append((relative + weight * prior, rank, hit))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [replace(hit, fused=score) for score, _, hit in scored[:k]]
