"""The semantic cache's guard against close questions that need another answer.

Sentence embeddings place "Cancel my subscription" and "Don't cancel my subscription", or "orders
under £50" and "orders under £80", or "Word to PDF" and "PDF to Word", very close together: a cosine
threshold alone serves each the other's answer. Before a stored question may answer a new one, their
**signatures** must agree on what embeddings blur:

- the numbers (every word with a digit: `50`, `7am`, `2fa`), as a multiset;
- whether the question is negated (an odd number of negation words: `not`, `no`, `never`,
  `without`, `don't`, ...);
- the order of the words, when both questions use the very same words (a swap: "A to B", "B to A").

The signature keeps only digests of those parts, not the words: the cache stores it beside the
question's vector. Measured on a labelled set of hard traps (benchmarks/semantic_cache_bench.py), the
guard removes half to two thirds of the false hits for a few points of the hit rate; it cannot see antonyms ("open" /
"closed") or changed entities ("adults" / "children"): those are left to the threshold.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["SIGNATURE_VERSION", "compatible", "signature"]

SIGNATURE_VERSION = "q1"
_APOSTROPHES = "'\u2019"  # ' and the typographic one
_WORD = re.compile(rf"[^\W_]+(?:[{_APOSTROPHES}][^\W_]+)?")
_DROP_APOSTROPHES = str.maketrans("", "", _APOSTROPHES)
_NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without", "cannot", "cant"}
)
_NOT_CONTRACTED = frozenset(
    {"do", "does", "did", "is", "are", "was", "were", "wo", "ca", "should", "could", "would", "must", "has",
     "have", "had", "need"}
)  # fmt: skip


def _words(text: str) -> list[str]:
    return [w.translate(_DROP_APOSTROPHES) for w in _WORD.findall(text.casefold())]


def _negated(word: str) -> bool:
    return word in _NEGATIONS or (word.endswith("nt") and word[:-2] in _NOT_CONTRACTED)


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def signature(question: str) -> str:
    """`q1:<numbers>:<negated 0|1>:<bag of words>:<word order>`, each part a digest."""
    words = _words(question)
    numbers = sorted(w for w in words if any(c.isdigit() for c in w))
    negated = sum(_negated(w) for w in words) % 2
    return ":".join(
        (SIGNATURE_VERSION, _digest(numbers), str(negated), _digest(sorted(words)), _digest(words))
    )


def compatible(stored: str | None, new: str) -> bool:
    """Whether a stored question's signature lets its answer serve a question with signature `new`: the
    same numbers and negation, and not the same words in another order. A stored question without a
    signature, or one of another version, is not compatible."""
    if stored is None:
        return False
    a, b = stored.split(":"), new.split(":")
    if len(a) != 5 or len(b) != 5 or a[0] != b[0]:
        return False
    swapped = a[3] == b[3] and a[4] != b[4]
    return a[1] == b[1] and a[2] == b[2] and not swapped
