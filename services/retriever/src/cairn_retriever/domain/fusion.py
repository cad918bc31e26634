"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, 2009): merge ranked lists without their scores."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

DEFAULT_RRF_K = 60


def rrf_scores(rankings: Sequence[Sequence[T]], k: int = DEFAULT_RRF_K) -> dict[T, float]:
    """Each item's fused score: the sum over the lists that hold it of 1 / (k + rank), ranks from 1.

    An item listed twice in one list counts at its best rank.
    """
    if k < 1:
        raise ValueError("the RRF constant k must be positive")
    scores: dict[T, float] = {}
    for ranking in rankings:
        seen: set[T] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def rrf_fuse(rankings: Sequence[Sequence[T]], k: int = DEFAULT_RRF_K) -> list[tuple[T, float]]:
    """Items of all lists, best fused score first; ties go to the item with the better best rank,
    then to the earlier list."""
    scores = rrf_scores(rankings, k)
    best: dict[T, tuple[int, int]] = {}
    for li, ranking in enumerate(rankings):
        for rank, item in enumerate(ranking, start=1):
            if item not in best or (rank, li) < best[item]:
                best[item] = (rank, li)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]]))
