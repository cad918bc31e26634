"""The local default toxicity classifier: the scikit-learn model shipped in `alt-profanity-check`.

A linear model over word n-grams (TF-IDF, a LinearSVC calibrated with sigmoids over 5 folds),
trained for profanity and insults: offline and small, but blind to toxicity phrased politely and
quick to flag single swear words in harmless sentences. Policies should treat its scores accordingly.

`profanity_check.predict_prob` spends ~5 ms a call in scikit-learn's per-call input checks, most of a
screening's time. When the shipped model has the expected shape, this adapter computes the same
probabilities directly (TF-IDF of the words a text has, decision function of each fold's linear model,
its sigmoid, their mean: ~0.2 ms) and proves on load that they match `predict_prob` on a probe set;
otherwise, or with
`fast=False`, it calls `predict_prob`. On the fast path it is `inline`: the screener calls it on the
event loop, since a hand-off to a worker thread would cost more than the scoring.

Context (`contextual=True`, the default): the model reacts to single words, so "who wrote The Idiot"
scored 1.00 and "what can you eat" 0.57. The adapter scores each text without the *charged* words
(those whose score alone reaches `CHARGED_AT`) that `domain.toxicity_context` finds standing in a title
or aimed at no one; profanity and slurs always count. `raw_scores` is the model alone. Measured on
public benign and abusive sets by `benchmarks/toxicity_bench.py` (figures in docs/safety-toxicity.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cairn_safety.adapters.errors import ClassifierUnavailableError
from cairn_safety.domain.toxicity_context import neutralise

__all__ = ["CHARGED_AT", "ProfanityCheckClassifier"]

CHARGED_AT = 0.5
"""A word is charged when the model scores it alone at least this high (the default policy's review
threshold): the words that can tip a text into review or block by themselves."""

_PROBE = [
    "you are a fucking idiot",
    "How long does a refund take?",
    "what the heck",
    "I will find you, you worthless piece of shit",
    "Thanks, that solved it!",
    "",
]


def _linear_path(vectorizer: Any, model: Any) -> Callable[[list[str]], Any] | None:
    """The TF-IDF features and the calibrated linear model as plain array algebra over the words each
    text has, or None when the model is not that shape. scikit-learn's own `transform` and calibrator
    `predict` spend ~5 ms a call validating their inputs (through narwhals); this spends ~0.2 ms."""
    try:
        params = vectorizer.get_params()
        if params["analyzer"] != "word" or params["binary"] or params["norm"] != "l2":
            return None
        if not params["use_idf"] or params["dtype"] is not np.float64:
            return None
        analyze = vectorizer.build_analyzer()
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        sublinear = bool(params["sublinear_tf"])
        folds = model.calibrated_classifiers_
        if any(len(f.calibrators) != 1 for f in folds):
            return None
        weights = np.vstack([f.estimator.coef_ for f in folds])  # folds x vocabulary
        bias = np.array([f.estimator.intercept_[0] for f in folds])
        slope = np.array([f.calibrators[0].a_ for f in folds])
        offset = np.array([f.calibrators[0].b_ for f in folds])
        if weights.shape != (len(folds), len(idf)):
            return None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None

    def probability(text: str) -> float:
        counts: dict[int, int] = {}
        for term in analyze(text):
            index = vocabulary.get(term)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        decision = bias
        if counts:
            columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if sublinear:
                tf = np.log(tf) + 1.0
            values = tf * idf[columns]
            values /= np.sqrt(values @ values)
            decision = weights[:, columns] @ values + bias
        # sklearn's sigmoid calibration: 1 / (1 + exp(a * decision + b)), averaged over the folds
        return float(np.mean(1.0 / (1.0 + np.exp(slope * decision + offset))))

    def predict(texts: list[str]) -> Any:
        return np.array([probability(text) for text in texts])

    return predict


class ProfanityCheckClassifier:
    """ToxicityClassifier on the `alt-profanity-check` model (loads on construction); with `contextual`,
    charged words that stand in a title or are aimed at no one do not count (see the module)."""

    name = "profanity-check"

    def __init__(self, fast: bool = True, contextual: bool = True) -> None:
        try:
            module = importlib.import_module("profanity_check.profanity_check")
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise ClassifierUnavailableError(
                "the toxicity classifier `profanity-check` needs the package alt-profanity-check "
                "(pip install alt-profanity-check)"
            ) from exc
        self._predict: Callable[[list[str]], Any] = module.predict_prob
        self.fast = False
        self.inline = False  # the screener runs it on the event loop only on the fast path
        if fast:
            linear = _linear_path(getattr(module, "vectorizer", None), getattr(module, "model", None))
            if linear is not None and np.allclose(
                linear(_PROBE), module.predict_prob(_PROBE), rtol=0, atol=1e-9
            ):
                self._predict, self.fast, self.inline = linear, True, True
        self.contextual = contextual
        self.charged: frozenset[str] = frozenset()
        if contextual:
            vocabulary: dict[str, int] = module.vectorizer.vocabulary_
            words = sorted(vocabulary)
            alone = self._predict(words)
            self.charged = frozenset(w for w, p in zip(words, alone, strict=True) if p >= CHARGED_AT)

    def raw_scores(self, texts: Sequence[str]) -> list[float]:
        """The model's scores, every word counted."""
        if not texts:
            return []
        return [min(1.0, max(0.0, float(p))) for p in self._predict(list(texts))]

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not self.contextual:
            return self.raw_scores(texts)
        return self.raw_scores([neutralise(t, self.charged.__contains__) for t in texts])
