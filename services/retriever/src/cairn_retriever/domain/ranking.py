"""Turning a store's candidate lists into the hits a search returns (vector-only or hybrid).

Shared by the stores that fuse in Python (in-memory, pgvector), so they rank alike: candidates
below the similarity floor are dropped after ranking, so a chunk's rank in each list is its rank
among all candidates of that list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from cairn_retriever.domain.fusion import rrf_fuse
from cairn_retriever.domain.models import SearchHit, SearchQuery


def _passes(hit: SearchHit, query: SearchQuery) -> bool:
    return query.min_similarity is None or hit.similarity >= query.min_similarity


def rank_vector(by_similarity: Sequence[SearchHit], query: SearchQuery) -> list[SearchHit]:
    """The k most similar hits above the floor; `fused` is the similarity, `vector_rank` set."""
    out = []
    for rank, hit in enumerate(by_similarity, start=1):
        if _passes(hit, query):
            out.append(replace(hit, fused=hit.similarity, vector_rank=rank, text_rank=None))
        if len(out) == query.k:
            break
    return out


def rank_hybrid(
    hits: Mapping[str, SearchHit],
    vector_ids: Sequence[str],
    text_ids: Sequence[str],
    query: SearchQuery,
) -> list[SearchHit]:
    """The k best hits by reciprocal rank fusion of the two rankings, above the similarity floor."""
    vector_rank = {cid: r for r, cid in enumerate(vector_ids, start=1)}
    text_rank = {cid: r for r, cid in enumerate(text_ids, start=1)}
    out = []
    for cid, score in rrf_fuse([list(vector_ids), list(text_ids)], query.rrf_k):
        hit = hits[cid]
        if not _passes(hit, query):
            continue
        out.append(replace(hit, fused=score, vector_rank=vector_rank.get(cid), text_rank=text_rank.get(cid)))
        if len(out) == query.k:
            break
    return out
