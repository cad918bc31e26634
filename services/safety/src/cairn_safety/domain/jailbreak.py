"""The learned jailbreak / prompt-injection detector: TF-IDF n-grams and a logistic regression.

A text is read as `domain.normalise.skeleton` gives it (NFKC, case-folded, invisible characters dropped,
look-alikes mapped, accents stripped), then cut into character 3-5-grams (inside word boundaries, like scikit-learn's `char_wb`) and
word 1-2-grams. Each block is weighted by sublinear term frequency times inverse document frequency and
L2-normalised; the score is the logistic of the weights' dot product with the trained coefficients.

A long text is also scored in windows of `window_words` words (half overlapping, at most `MAX_WINDOWS`
spread from its first word to its last), and the highest score counts: a short injection appended to a
long, harmless document is not diluted away. Screening scores the plain reading first and stops there
when it reaches the block threshold; otherwise every reading that `domain.normalise.views` finds
(leetspeak, spaced letters, typos towards the detector's own words, base64/hex payloads ...) is scored and
the highest kept. The readings and windows of a text are scored as one sparse batch.

`add_jailbreak` adds the detector's finding to a screening's decision under the input policy's
`jailbreak` thresholds. `JailbreakModel` is pure data (vocabulary, idf, coefficients, the operating threshold and provenance);
`adapters.jailbreak_model` reads and writes it as JSON, `jailbreak_training` fits it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from cairn_events import SafetyFinding, Verdict
from cairn_safety.domain.normalise import skeleton, views
from cairn_safety.domain.policy import SEVERITY, CheckPolicy
from cairn_safety.domain.verdicts import Decision

__all__ = [
    "CHECK_JAILBREAK_DETECTOR",
    "JailbreakModel",
    "JailbreakScore",
    "add_jailbreak",
    "char_ngrams",
    "features",
    "word_ngrams",
]

_WORD = re.compile(r"\w+")
_SPLIT = re.compile(r"\s+")
MAX_WINDOWS = 24
"""At most this many windows of a long text are scored (spread evenly from its start to its end)."""
CHAR_PREFIX = "c:"
WORD_PREFIX = "w:"


def char_ngrams(text: str, low: int = 3, high: int = 5) -> Counter[str]:
    """Character n-grams of each whitespace-separated word padded with spaces (scikit-learn's `char_wb`)."""
    counts: Counter[str] = Counter()
    for word in _SPLIT.split(text):
        if not word:
            continue
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            if n > size:
                break
            for i in range(size - n + 1):
                counts[padded[i : i + n]] += 1
            if n == size:
                break
    return counts


def word_ngrams(text: str, low: int = 1, high: int = 2) -> Counter[str]:
    """Word n-grams (words: runs of letters, digits and underscores)."""
    words = _WORD.findall(text)
    counts: Counter[str] = Counter()
    for n in range(low, high + 1):
        for i in range(len(words) - n + 1):
            counts[" ".join(words[i : i + n])] += 1
    return counts


def features(normalised: str) -> tuple[Counter[str], Counter[str]]:
    """The character and word n-gram counts of an already normalised text."""
    return char_ngrams(normalised), word_ngrams(normalised)


@dataclass(frozen=True)
class JailbreakScore:
    """The detector's score of one text, and which reading of it scored highest."""

    score: float
    how: str = ""
    """Empty for the plain text; else how the reading was obtained (`after undoing leetspeak`, ...)."""


class _Compiled:
    """The model's weights as arrays (column = character n-grams, then word n-grams) and a cache of each
    whitespace-separated word's in-vocabulary character n-grams and its word tokens."""

    def __init__(self, model: JailbreakModel) -> None:
        chars, words = sorted(model.char_weights), sorted(model.word_weights)
        self.char_index = {g: i for i, g in enumerate(chars)}
        self.word_index = {g: len(chars) + i for i, g in enumerate(words)}
        pairs = [model.char_weights[g] for g in chars] + [model.word_weights[g] for g in words]
        self.idf = np.array([p[0] for p in pairs], dtype=np.float64)
        self.coef = np.array([p[1] for p in pairs], dtype=np.float64)
        self.n_char = len(chars)
        self.columns = len(pairs)
        self.word = lru_cache(maxsize=1 << 16)(self._word)

    def _word(self, word: str) -> tuple[list[int], list[str]]:
        """The word's in-vocabulary character n-gram and word-unigram columns, and its word tokens."""
        chars, words = self.char_index, self.word_index
        tokens = _WORD.findall(word)
        cols = [chars[g] for g in char_ngrams(word).elements() if g in chars]
        cols += [words[t] for t in tokens if t in words]
        return cols, tokens


@dataclass(frozen=True)
class JailbreakModel:
    """A trained detector: per n-gram its idf and coefficient, the intercept and the operating thresholds."""

    version: str
    char_weights: Mapping[str, tuple[float, float]]
    """Character n-gram → (idf, coefficient)."""
    word_weights: Mapping[str, tuple[float, float]]
    """Word n-gram → (idf, coefficient)."""
    intercept: float
    threshold: float
    """The score from which a text counts as a jailbreak (chosen on the training data, see provenance):
    the review threshold."""
    window_words: int = 200
    provenance: Mapping[str, Any] = field(default_factory=dict)
    block_threshold: float = 1.0
    """The score from which a text is taken for certain (chosen on the training data): the block
    threshold. Scoring stops at the first reading that reaches it."""
    max_windows: int = MAX_WINDOWS

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """The words whose presence raises the score most: the words `views` corrects typos towards."""
        ranked = sorted(
            (k for k, (_, c) in self.word_weights.items() if " " not in k and c > 0 and len(k) > 2),
            key=lambda k: (-self.word_weights[k][1], k),
        )
        return frozenset(ranked[:300])

    @cached_property
    def _compiled(self) -> _Compiled:
        return _Compiled(self)

    def _spans(self, length: int) -> list[tuple[int, int]]:
        """The whole text, and for a long one windows of `window_words` words, half overlapping; beyond
        `max_windows` windows they are spread evenly from the first to the last."""
        if length <= self.window_words:
            return [(0, length)]
        step = self.window_words // 2
        starts = list(range(0, length - step, step))
        if len(starts) > self.max_windows:
            last = length - self.window_words
            starts = sorted({round(i * last / (self.max_windows - 1)) for i in range(self.max_windows)})
        return [(0, length), *((s, min(length, s + self.window_words)) for s in starts)]

    def logits(self, readings: Sequence[str]) -> list[float]:
        """The decision value of each normalised text, the highest over its windows: every text and
        window featurised into one sparse batch and scored with one dot product."""
        compiled = self._compiled
        word_index = compiled.word_index
        cols: list[int] = []
        segs: list[int] = []
        owner: list[int] = []
        for r, text in enumerate(readings):
            info = [compiled.word(w) for w in text.split()]
            for start, end in self._spans(len(info)):
                seg = len(owner)
                owner.append(r)
                before = len(cols)
                tokens: list[str] = []
                for chars, words in info[start:end]:
                    cols.extend(chars)
                    tokens.extend(words)
                pairs = (f"{a} {b}" for a, b in pairwise(tokens))
                cols.extend(i for g in pairs if (i := word_index.get(g)) is not None)
                segs.extend([seg] * (len(cols) - before))
        if not owner:
            return []
        keys, counts = np.unique(
            np.asarray(segs, dtype=np.int64) * compiled.columns + np.asarray(cols, dtype=np.int64),
            return_counts=True,
        )
        seg_of, col = np.divmod(keys, compiled.columns)
        value = (1.0 + np.log(counts)) * compiled.idf[col]
        block = seg_of * 2 + (col >= compiled.n_char)
        size = 2 * len(owner)
        norm = np.sqrt(np.bincount(block, weights=value * value, minlength=size))
        dot = np.bincount(block, weights=value * compiled.coef[col], minlength=size)
        per_block = np.divide(dot, norm, out=np.zeros(size), where=norm > 0)
        per_segment = self.intercept + per_block[0::2] + per_block[1::2]
        best = [-math.inf] * len(readings)
        for seg, r in enumerate(owner):
            best[r] = max(best[r], float(per_segment[seg]))
        return best

    def logit(self, normalised: str) -> float:
        """The decision value of one normalised text (no windows)."""
        chars, words = features(normalised)
        return self.intercept + self._block(chars, self.char_weights) + self._block(words, self.word_weights)

    @staticmethod
    def _block(counts: Counter[str], weights: Mapping[str, tuple[float, float]]) -> float:
        dot = 0.0
        norm = 0.0
        for gram, count in counts.items():
            found = weights.get(gram)
            if found is None:
                continue
            value = (1.0 + math.log(count)) * found[0]
            norm += value * value
            dot += value * found[1]
        return dot / math.sqrt(norm) if norm > 0 else 0.0

    def probability(self, normalised: str) -> float:
        """The score of one normalised text, the highest over its windows when it is long."""
        return _sigmoid(self.logits([normalised])[0])

    def score(self, text: str, stop_at: float | None = None) -> JailbreakScore:
        """The highest score over the text's readings (`domain.normalise.views`). The plain reading is
        scored first; when it reaches `stop_at` (default: `block_threshold`) the other readings are not
        made, and its score is the answer."""
        stop = self.block_threshold if stop_at is None else stop_at
        plain = skeleton(text)
        first = _sigmoid(self.logits([plain])[0])
        if first >= stop:
            return JailbreakScore(first)
        others = [v for v in views(text, self.vocabulary)[1:] if v.text != plain]
        best = JailbreakScore(first)
        for view, logit in zip(others, self.logits([v.text for v in others]), strict=True):
            value = _sigmoid(logit)
            if value > best.score:
                best = JailbreakScore(value, view.how)
        return best

    def scores(self, texts: Sequence[str]) -> list[JailbreakScore]:
        """`score` of each text, in order."""
        return [self.score(t) for t in texts]


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit)) if logit > -700 else 0.0


CHECK_JAILBREAK_DETECTOR = "jailbreak.detector"
"""The finding's `check` for the learned detector on input (the output side's patterns are `jailbreak`)."""


def _where(index: int, total: int, noun: str) -> str:
    return f"{noun} {index + 1} of {total}" if total > 1 else noun


def add_jailbreak(
    decision: Decision,
    check: CheckPolicy,
    scores: Sequence[JailbreakScore],
    model: str,
    noun: str = "user turn",
) -> Decision:
    """`decision` with the detector's finding added (its highest-scoring text) and, when the finding's
    action is more severe than the verdict so far, the verdict raised to it."""
    if not check.enabled:
        return decision
    if scores:
        top = max(range(len(scores)), key=lambda i: scores[i].score)
        score = scores[top].score
        how = f", {scores[top].how}" if scores[top].how else ""
        detail = f"model {model}; highest in {_where(top, len(scores), noun)}{how}"
    else:
        score, detail = 0.0, f"model {model}; no text"
    action = check.action_for(score)
    fired = action is not Verdict.ALLOW
    label = "jailbreak" if fired else "none"
    finding = SafetyFinding(
        check=CHECK_JAILBREAK_DETECTOR, label=label, score=round(score, 6), fired=fired, detail=detail
    )
    findings = [*decision.findings, finding]
    if not fired or SEVERITY[action] < SEVERITY[decision.verdict]:
        return replace(decision, findings=findings)
    reason = f"{CHECK_JAILBREAK_DETECTOR} score {score:.2f} ≥ {check.threshold_for(score):.2f}"
    reasons = [*decision.reasons, reason] if action is decision.verdict else [reason]
    return replace(decision, verdict=action, findings=findings, reasons=reasons)
