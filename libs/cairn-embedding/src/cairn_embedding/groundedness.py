"""Groundedness: how much of an answer the retrieved chunks support (the hallucination signal).

Each answer sentence is scored against the chunks two ways: the best cosine similarity of its
embedding to a chunk or to one of a chunk's sentences (a long chunk dilutes its embedding), and
lexical support (the share of its content words found in the chunks). It counts as supported when
the blend reaches a threshold. The answer's score is the share of supported sentences, weighted by
sentence length. Pure: the embedder is passed in.

Similarity is rescaled before blending: sentence embeddings (all-MiniLM-L6-v2) put any two sentences
on the same topic at a cosine of about 0.5-0.8, a wrong claim about the right subject included, so
only similarity above `similarity_floor` counts, linearly up to 1. On the hand-made set in the tests,
raw cosine blended 0.6/0.4 scored "The premium plan is free for students" as fully supported by
"costs 20 dollars per month"; rescaled from 0.5 and weighted 0.4 it is not, while paraphrases are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Embed",
    "GroundednessScore",
    "SentenceSupport",
    "content_words",
    "cosine",
    "score_groundedness",
    "sentences",
]

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]
"""Texts in, one vector per text out (same order)."""

_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`])")
_WORD = re.compile(r"[A-Za-z0-9_]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "which",
        "while",
        "who",
        "will",
        "with",
        "you",
        "your",
        "i",
        "we",
        "our",
        "not",
        "no",
        "yes",
        "also",
        "just",
        "only",
        "very",
        "about",
        "using",
        "use",
        "used",
    ]
)


def sentences(text: str) -> list[str]:
    """The answer's sentences, citations removed, sentences of fewer than two words dropped."""
    clean = _CITATION.sub("", text).strip()
    return [s.strip() for s in _SENTENCE_END.split(clean) if len(_WORD.findall(s)) >= 2]


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stop words, no one-letter words)."""
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOPWORDS and len(w) > 1]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


@dataclass(frozen=True)
class SentenceSupport:
    """How well the chunks support one sentence."""

    sentence: str
    similarity: float
    """Best cosine similarity of the sentence to a chunk (0..1; 0 without an embedder)."""
    lexical: float
    """Share of the sentence's content words found in the chunks (0..1)."""
    score: float
    """The blend the threshold is applied to."""
    supported: bool


@dataclass(frozen=True)
class GroundednessScore:
    """The answer's groundedness: 1 = every sentence supported, 0 = none."""

    score: float
    sentences: tuple[SentenceSupport, ...]

    @property
    def unsupported(self) -> list[str]:
        """The sentences the chunks do not support."""
        return [s.sentence for s in self.sentences if not s.supported]


def score_groundedness(
    answer: str,
    chunks: Sequence[str],
    embed: Embed | None,
    *,
    threshold: float = 0.5,
    semantic_weight: float = 0.4,
    similarity_floor: float = 0.5,
) -> GroundednessScore | None:
    """Score `answer` against `chunks`; None when there is nothing to score (no sentence or no chunk).

    Without an embedder only lexical support counts.
    """
    parts = sentences(answer)
    texts = [c for c in chunks if c.strip()]
    if not parts or not texts:
        return None
    vocabulary = {w for chunk in texts for w in content_words(chunk)}
    sims = [0.0] * len(parts)
    weight = semantic_weight if embed is not None else 0.0
    if embed is not None:
        units = list(dict.fromkeys([*texts, *(s for t in texts for s in sentences(t))]))
        vectors = list(embed([*parts, *units]))
        sent_vecs, unit_vecs = vectors[: len(parts)], vectors[len(parts) :]
        sims = [max(max(cosine(s, u) for u in unit_vecs), 0.0) for s in sent_vecs]
    scored: list[SentenceSupport] = []
    for sentence, sim in zip(parts, sims, strict=True):
        words = content_words(sentence)
        lexical = sum(w in vocabulary for w in words) / len(words) if words else 0.0
        semantic = min(max((sim - similarity_floor) / (1 - similarity_floor), 0.0), 1.0)
        blend = weight * semantic + (1 - weight) * lexical
        scored.append(
            SentenceSupport(sentence, round(sim, 4), round(lexical, 4), round(blend, 4), blend >= threshold)
        )
    lengths = [max(len(content_words(s.sentence)), 1) for s in scored]
    total = sum(n for n, s in zip(lengths, scored, strict=True) if s.supported) / sum(lengths)
    return GroundednessScore(round(total, 4), tuple(scored))
