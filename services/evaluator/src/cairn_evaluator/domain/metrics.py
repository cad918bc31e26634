"""Text metrics of the held-out suite: exact match, token F1 and ROUGE-L, on normalised text.

Normalisation (SQuAD style): lower case, punctuation and the articles a/an/the removed, whitespace
collapsed. Two empty texts match perfectly; an empty text against a non-empty one scores 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter

__all__ = ["exact_match", "normalise", "rouge_l", "token_f1", "tokens"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans(dict.fromkeys(string.punctuation, " "))


def normalise(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """The normalised text's words."""
    return normalise(text).split()


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when both texts are equal after normalisation, else 0.0."""
    return 1.0 if normalise(prediction) == normalise(reference) else 0.0


def _f_measure(overlap: float, predicted: int, expected: int) -> float:
    if predicted == 0 and expected == 0:
        return 1.0
    if overlap == 0 or predicted == 0 or expected == 0:
        return 0.0
    precision = overlap / predicted
    recall = overlap / expected
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (tokens counted with multiplicity)."""
    pred, ref = tokens(prediction), tokens(reference)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    return _f_measure(overlap, len(pred), len(ref))


def _lcs_length(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (beta 1): from the longest common subsequence of the two token lists."""
    pred, ref = tokens(prediction), tokens(reference)
    return _f_measure(_lcs_length(pred, ref), len(pred), len(ref))
