"""Drift: a recent window compared with a reference window, signal by signal.

- request embeddings: cosine distance between the windows' centroids, and the population stability
  index (PSI) of each request's similarity to the reference centroid;
- numeric signals (prompt length, tokens used, feedback score): PSI over the reference's quantiles;
- rates (refusal rate): absolute change; means (groundedness): the drop.

PSI below 0.1 is usually read as stable, 0.1-0.25 as a moderate shift, above 0.25 as a major one.
Under no shift PSI still grows with the number of bins over the sample size (about
`(bins - 1) * (1/n + 1/m)`), so by default the bins follow the smaller window: one per 20 values,
between 2 and 10. A 40-request hour is then held to 2 bins, not to 10 mostly empty ones.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from cairn_embedding.groundedness import cosine

__all__ = [
    "DriftSignal",
    "bins_for",
    "centroid",
    "centroid_distance",
    "embedding_drift",
    "mean_drop",
    "psi",
    "rate_change",
]

_EPS = 1e-4
_VALUES_PER_BIN = 20


@dataclass(frozen=True)
class DriftSignal:
    """One signal's drift: its statistic, the threshold it is held to, whether it crossed it."""

    name: str
    statistic: str
    value: float
    threshold: float
    reference_size: int
    recent_size: int

    @property
    def drifted(self) -> bool:
        """Whether the value is above the threshold."""
        return self.value > self.threshold


def bins_for(n: int, m: int) -> int:
    """Bins for a PSI of windows of n and m values: one per 20 values of the smaller, 2..10."""
    return max(2, min(10, min(n, m) // _VALUES_PER_BIN))


def _quantile_edges(values: Sequence[float], bins: int) -> list[float]:
    ordered = sorted(values)
    edges = [ordered[min(len(ordered) - 1, round(i * len(ordered) / bins))] for i in range(1, bins)]
    return sorted(set(edges))


def _shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect.bisect_right(edges, v)] += 1
    n = max(len(values), 1)
    return [max(c / n, _EPS) for c in counts]


def psi(reference: Sequence[float], recent: Sequence[float], bins: int | None = None) -> float:
    """Population stability index of `recent` against `reference` (bins: the reference's quantiles;
    by default `bins_for` the window sizes)."""
    if not reference or not recent:
        raise ValueError("both windows need values")
    edges = _quantile_edges(reference, bins or bins_for(len(reference), len(recent)))
    ref, cur = _shares(reference, edges), _shares(recent, edges)
    return sum((c - r) * math.log(c / r) for r, c in zip(ref, cur, strict=True))


def centroid(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The mean vector."""
    if not vectors:
        raise ValueError("no vectors")
    dim = len(vectors[0])
    return [sum(v[i] for v in vectors) / len(vectors) for i in range(dim)]


def centroid_distance(reference: Sequence[Sequence[float]], recent: Sequence[Sequence[float]]) -> float:
    """1 - cosine similarity of the two windows' mean embeddings."""
    return 1.0 - cosine(centroid(reference), centroid(recent))


def embedding_drift(
    reference: Sequence[Sequence[float]],
    recent: Sequence[Sequence[float]],
    *,
    centroid_threshold: float = 0.1,
    psi_threshold: float = 0.25,
    name: str = "request_embedding",
) -> list[DriftSignal]:
    """Centroid distance and the PSI of similarity-to-reference-centroid, for request embeddings."""
    centre = centroid(reference)
    ref_sims = [cosine(v, centre) for v in reference]
    cur_sims = [cosine(v, centre) for v in recent]
    n, m = len(reference), len(recent)
    distance = 1.0 - cosine(centre, centroid(recent))
    return [
        DriftSignal(name, "centroid_distance", distance, centroid_threshold, n, m),
        DriftSignal(name, "psi", psi(ref_sims, cur_sims), psi_threshold, n, m),
    ]


def rate_change(reference: Sequence[bool], recent: Sequence[bool]) -> float:
    """Absolute change of the share of True between the windows."""
    if not reference or not recent:
        raise ValueError("both windows need values")
    return abs(sum(recent) / len(recent) - sum(reference) / len(reference))


def mean_drop(reference: Sequence[float], recent: Sequence[float]) -> float:
    """How far the recent mean fell below the reference mean (negative when it rose)."""
    if not reference or not recent:
        raise ValueError("both windows need values")
    return sum(reference) / len(reference) - sum(recent) / len(recent)
